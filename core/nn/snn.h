/*
 * Self-normalizing networks (Klambauer et al., 2017): the SELU moment map
 * (mu, nu) -> (mu~, nu~) of a layer z = w.x followed by SELU, its Jacobian,
 * the solver for SELU constants with a chosen fixed point, and the general
 * AlphaDropout correction. All in double precision, closed forms (Gaussian
 * integrals over half-lines via erfc and a stable Mills ratio).
 */
#ifndef SL_SNN_H
#define SL_SNN_H
#include "nn.h"

/* The moment map of one SELU(alpha, scale) layer. The inputs x_i have mean
 * mu and variance nu; the weights of a unit sum to omega (sum w_i) and their
 * squares to tau (sum w_i^2), so z ~ N(mu*omega, nu*tau) (the paper's CLT
 * argument). Normalized weights: omega = 0, tau = 1.
 * out: mean / var = E[selu(z)], Var[selu(z)];
 *      jac[0][0] = d mean/d mu, jac[0][1] = d mean/d nu,
 *      jac[1][0] = d var/d mu,  jac[1][1] = d var/d nu  (analytic);
 *      spectral_norm = largest singular value of jac. */
typedef struct sl_snn_moments {
  double mean, var;
  double jac[2][2];
  double spectral_norm;
} sl_snn_moments;

/* SL_EINVAL (naming the value) unless every argument is finite, nu*tau > 0,
 * alpha >= 0 and scale > 0. */
int sl_snn_moments_eval(double mu, double nu, double omega, double tau, double alpha, double scale,
                        sl_snn_moments *out);

/* The SELU constants (alpha, scale) whose fixed point is (mean, var): with
 * the layer's pre-activation z ~ N(mean, var), E[selu(z)] = mean and
 * Var[selu(z)] = var (the SNN authors' getSeluParameters). Closed form: for
 * fixed alpha both moments scale with scale, which leaves a quadratic in
 * alpha. (0, 1) gives PyTorch's constants to ~1e-15. SL_EINVAL when var <= 0,
 * a value is not finite, or no alpha > 0 fits (mean too large for var). */
int sl_snn_params(double mean, double var, double *alpha, double *scale);

/* The general AlphaDropout correction that keeps the fixed point (mean, var)
 * when a dropped unit is set to alpha_prime (= -scale*alpha of the SELU):
 * q = 1 - p, a = sqrt(var / (q ((1-q)(alpha_prime - mean)^2 + var))),
 * b = mean - a (q mean + (1-q) alpha_prime); dropped = a*alpha_prime + b.
 * SL_EINVAL for p outside [0, 1), var <= 0 or non-finite values. */
int sl_snn_alpha_dropout_coeffs(double p, double mean, double var, double alpha_prime, double *a, double *b,
                                double *dropped);

/* AlphaDropout keeping the fixed point (mean, var): dropped units are set to
 * alpha_prime and the affine correction above is applied (docs/snn.md; the
 * standard AlphaDropout is the case mean 0, var 1). alpha_prime = NAN means -scale*alpha of the
 * SELU solved by sl_snn_params(mean, var), and PyTorch's literal -1.7580993408473766
 * for (0, 1). rng as for sl_alpha_dropout_new. */
sl_module *sl_alpha_dropout_new_ex(double p, double mean, double var, double alpha_prime, sl_rng *rng);

/* Introspection for checks: a Dropout/AlphaDropout's p and its constants
 * (kept units become a*x + b, dropped ones `dropped`; Dropout: a = 1/(1-p),
 * b = dropped = 0); a SELU/ELU/LeakyReLU's alpha (slope) and scale, as the
 * float32 the kernel uses. SL_EINVAL for other module types. */
int sl_dropout_coeffs_of(const sl_module *m, double *p, double *a, double *b, double *dropped);
int sl_activation_constants(const sl_module *m, double *alpha, double *scale);

#endif
