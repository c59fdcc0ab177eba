/* The SNN paper's analysis in closed form: Gaussian integrals of SELU over
 * the two half-lines, the moment map with its analytic Jacobian, the solver
 * for SELU constants with a given fixed point, and the general AlphaDropout
 * correction. Everything is double precision; nothing allocates. */
#include <math.h>

#include "../tensor/error.h"
#include "snn.h"

#define SQRT2 1.41421356237309504880
#define INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */

/* Mills ratio Phi(-b) / phi(b) for b >= 0: erfc while exp(b^2/2) is finite
 * and exact to a few ulp, else the asymptotic series (truncation < 1e-15
 * for b > 25). */
static double mills(double b) {
  if (b <= 25.0) return 0.5 * erfc(b / SQRT2) * exp(0.5 * b * b) / INV_SQRT_2PI;
  double u = 1.0 / (b * b);
  return (1.0 + u * (-1.0 + u * (3.0 + u * (-15.0 + u * (105.0 + u * (-945.0 + u * 10395.0)))))) / b;
}

/* The half-line integrals of z ~ N(m, v) that SELU's moments are made of. */
typedef struct gauss_parts {
  double p_neg, p_pos; /* P(z <= 0), P(z > 0) */
  double z1, z2;       /* E[z 1{z>0}], E[z^2 1{z>0}] */
  double e1, e2;       /* E[e^z 1{z<=0}], E[e^{2z} 1{z<=0}] */
  double pdf0;         /* density of z at 0 */
} gauss_parts;

/* E[e^{kz} 1{z<=0}] = exp(km + k^2 v/2) Phi(-b), b = (m + kv)/s. For b >= 0
 * it equals exp(-m^2/(2v)) mills(b) / sqrt(2 pi), which neither overflows
 * nor underflows early; for b < 0 the direct form is safe (its exponent is
 * negative). */
static double exp_neg_part(double m, double v, double s, double k) {
  double b = (m + k * v) / s;
  if (b < 0.0) return exp(k * m + 0.5 * k * k * v) * 0.5 * erfc(b / SQRT2);
  return exp(-0.5 * m * m / v) * mills(b) * INV_SQRT_2PI;
}

static void gauss_parts_eval(double m, double v, gauss_parts *g) {
  double s = sqrt(v), r = m / s;
  double phi = exp(-0.5 * r * r) * INV_SQRT_2PI;
  g->p_neg = 0.5 * erfc(r / SQRT2);
  g->p_pos = 0.5 * erfc(-r / SQRT2);
  g->z1 = m * g->p_pos + s * phi;
  g->z2 = (m * m + v) * g->p_pos + m * s * phi;
  g->e1 = exp_neg_part(m, v, s, 1.0);
  g->e2 = exp_neg_part(m, v, s, 2.0);
  g->pdf0 = phi / s;
}

static int check_finite(const char *fn, const char *name, double v) {
  if (!isfinite(v)) return sl_fail(SL_EINVAL, "%s: %s must be finite, got %g", fn, name, v);
  return SL_OK;
}

int sl_snn_moments_eval(double mu, double nu, double omega, double tau, double alpha, double scale,
                        sl_snn_moments *out) {
  static const char fn[] = "snn.moments";
  int st;
  if ((st = check_finite(fn, "mean", mu)) || (st = check_finite(fn, "var", nu)) ||
      (st = check_finite(fn, "omega", omega)) || (st = check_finite(fn, "tau", tau)) ||
      (st = check_finite(fn, "alpha", alpha)) || (st = check_finite(fn, "scale", scale)))
    return st;
  if (!(nu > 0.0)) return sl_fail(SL_EINVAL, "%s: var must be > 0, got %g", fn, nu);
  if (!(tau > 0.0)) return sl_fail(SL_EINVAL, "%s: tau must be > 0, got %g", fn, tau);
  if (!(alpha >= 0.0)) return sl_fail(SL_EINVAL, "%s: alpha must be >= 0, got %g", fn, alpha);
  if (!(scale > 0.0)) return sl_fail(SL_EINVAL, "%s: scale must be > 0, got %g", fn, scale);
  double m = mu * omega, v = nu * tau;
  gauss_parts g;
  gauss_parts_eval(m, v, &g);
  const double a = alpha, l = scale, l2 = l * l, a2 = a * a;
  /* f = selu; moments and the expectations of the derivatives of f, f^2.
   * f'' has a point mass (1 - alpha) scale delta(z) from the kink at 0;
   * (f^2)' is continuous there, so (f^2)'' has none. */
  double ef = l * (g.z1 + a * (g.e1 - g.p_neg));
  double ef2 = l2 * (g.z2 + a2 * (g.e2 - 2.0 * g.e1 + g.p_neg));
  double ef_d1 = l * (g.p_pos + a * g.e1);
  double ef_d2 = l * (a * g.e1 + (1.0 - a) * g.pdf0);
  double ef2_d1 = 2.0 * l2 * (g.z1 + a2 * (g.e2 - g.e1));
  double ef2_d2 = 2.0 * l2 * (g.p_pos + a2 * (2.0 * g.e2 - g.e1));
  /* d/dm E[h(z)] = E[h'], d/dv E[h(z)] = E[h'']/2; m = mu omega, v = nu tau. */
  double dmean_dmu = omega * ef_d1, dmean_dnu = 0.5 * tau * ef_d2;
  double dsq_dmu = omega * ef2_d1, dsq_dnu = 0.5 * tau * ef2_d2;
  out->mean = ef;
  out->var = ef2 - ef * ef;
  if (out->var < 0.0) out->var = 0.0; /* cancellation when nearly all mass saturates */
  out->jac[0][0] = dmean_dmu;
  out->jac[0][1] = dmean_dnu;
  out->jac[1][0] = dsq_dmu - 2.0 * ef * dmean_dmu;
  out->jac[1][1] = dsq_dnu - 2.0 * ef * dmean_dnu;
  /* largest singular value of a 2x2 matrix: sigma^2 = (F + sqrt(F^2 - 4 det^2)) / 2 */
  const double(*j)[2] = out->jac;
  double fro = j[0][0] * j[0][0] + j[0][1] * j[0][1] + j[1][0] * j[1][0] + j[1][1] * j[1][1];
  double det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
  double disc = fro * fro - 4.0 * det * det;
  out->spectral_norm = sqrt(0.5 * (fro + sqrt(disc > 0.0 ? disc : 0.0)));
  return SL_OK;
}

int sl_snn_params(double mean, double var, double *alpha, double *scale) {
  static const char fn[] = "snn.params";
  int st;
  if ((st = check_finite(fn, "mean", mean)) || (st = check_finite(fn, "var", var))) return st;
  if (!(var > 0.0)) return sl_fail(SL_EINVAL, "%s: var must be > 0, got %g", fn, var);
  gauss_parts g;
  gauss_parts_eval(mean, var, &g);
  /* selu = scale * (A-part + alpha * B-part): E[selu] = scale (A + alpha B),
   * E[selu^2] = scale^2 (C + alpha^2 D). B < 0 < A, C, D. */
  const double A = g.z1, B = g.e1 - g.p_neg, C = g.z2, D = g.e2 - 2.0 * g.e1 + g.p_neg;
  const double second = var + mean * mean; /* the fixed point's E[x^2] */
  double a;
  if (mean == 0.0) {
    a = -A / B;
  } else {
    /* (A + alpha B)^2 = r (C + alpha^2 D), r = mean^2 / second, with the
     * sign of A + alpha B equal to that of mean (scale > 0). */
    const double r = mean * mean / second;
    const double qa = B * B - r * D, qb = 2.0 * A * B, qc = A * A - r * C;
    double disc = qb * qb - 4.0 * qa * qc;
    if (!(disc >= 0.0) || qa == 0.0)
      return sl_fail(SL_EINVAL, "%s: no SELU has the fixed point (mean %g, var %g)", fn, mean, var);
    double q = -0.5 * (qb + copysign(sqrt(disc), qb));
    double roots[2] = {q / qa, q != 0.0 ? qc / q : q / qa};
    a = NAN;
    for (int i = 0; i < 2; i++) {
      double e = A + roots[i] * B;
      if (roots[i] > 0.0 && (e > 0.0) == (mean > 0.0) && e != 0.0 && !(a <= roots[i])) a = roots[i];
    }
    if (!isfinite(a))
      return sl_fail(SL_EINVAL, "%s: no SELU with alpha > 0 has the fixed point (mean %g, var %g)", fn, mean,
                     var);
  }
  double sq = C + a * a * D;
  if (!(a > 0.0) || !(sq > 0.0) || !isfinite(a))
    return sl_fail(SL_EINVAL, "%s: no SELU with alpha > 0 has the fixed point (mean %g, var %g)", fn, mean, var);
  if (alpha) *alpha = a;
  if (scale) *scale = sqrt(second / sq);
  return SL_OK;
}

int sl_snn_alpha_dropout_coeffs(double p, double mean, double var, double alpha_prime, double *a, double *b,
                                double *dropped) {
  static const char fn[] = "AlphaDropout";
  int st;
  if ((st = check_finite(fn, "mean", mean)) || (st = check_finite(fn, "var", var)) ||
      (st = check_finite(fn, "alpha'", alpha_prime)))
    return st;
  if (!(p >= 0.0 && p < 1.0)) return sl_fail(SL_EINVAL, "%s: probability p has to be in [0, 1), got %g", fn, p);
  if (!(var > 0.0)) return sl_fail(SL_EINVAL, "%s: var must be > 0, got %g", fn, var);
  const double q = 1.0 - p, d = alpha_prime - mean;
  double av = sqrt(var / (q * ((1.0 - q) * d * d + var)));
  double bv = mean - av * (q * mean + (1.0 - q) * alpha_prime);
  if (a) *a = av;
  if (b) *b = bv;
  if (dropped) *dropped = av * alpha_prime + bv;
  return SL_OK;
}
