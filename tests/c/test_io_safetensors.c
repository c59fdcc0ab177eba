/* safetensors: bit-exact round trip, the exact header bytes, a file made
 * from PyTorch tensors, atomic saving, and malformed files each rejected
 * with a specific message. */
#include <signal.h>
#include <sys/resource.h>

#include "test_io_util.h"
#include "../data/io_refs.h"

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Writes an 8-byte length (hlen, or strlen(header) when hlen == 0), the
 * header and ndata bytes of data. */
static void st_write(const char *path, const char *header, uint64_t hlen, size_t ndata) {
  size_t hn = strlen(header);
  if (!hlen) hlen = hn;
  unsigned char *b = calloc(1, 8 + hn + ndata + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
  memcpy(b + 8, header, hn);
  for (size_t i = 0; i < ndata; i++) b[8 + hn + i] = (unsigned char)(i * 7);
  io_write(path, b, 8 + hn + ndata);
  free(b);
}

Test(safetensors, round_trip_is_bit_exact_with_metadata) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/m.safetensors", dir);
  sl_rng r;
  sl_rng_seed(&r, 5);
  sl_tensor *a = sl_tensor_empty(2, IO_SHAPE(2, 4));
  uint32_t special[8] = {0x7fc12345u, 0x80000000u, 0x7f800000u, 0xff800000u,
                         0x00000001u, 0x7f7fffffu, 0x3f800000u, 0xbeaaaaabu};
  for (int i = 0; i < 8; i++) a->data[i] = from_bits(special[i]);
  sl_tensor *b = sl_tensor_randn(1, IO_SHAPE(1000), &r);
  sl_tensor *c = sl_tensor_zeros(2, IO_SHAPE(0, 3));
  sl_tensor *d = sl_tensor_randn(3, IO_SHAPE(2, 1, 2), &r);
  const char *names[4] = {"z.last", "layer \"1\".w\xc3\xa9ight\n", "empty", "0.bias"};
  sl_tensor *ts[4] = {a, b, c, d};
  const char *mk[2] = {"format", "epoch"}, *mv[2] = {"pt", "3 \\ \"x\"\t"};
  cr_assert_eq(sl_safetensors_save(p, 4, names, ts, 2, mk, mv), SL_OK, "%s", sl_last_error());

  size_t n;
  unsigned char *raw = io_read(p, &n);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | raw[i];
  cr_assert_eq((8 + hl) % 8, 0, "header padded to 8 bytes");
  cr_assert_eq(n, 8 + hl + 4 * (8 + 1000 + 0 + 4));
  free(raw);

  sl_safetensors *st = sl_safetensors_load(p);
  cr_assert_not_null(st, "%s", sl_last_error());
  cr_assert_eq(sl_safetensors_count(st), 4);
  for (int i = 0; i < 4; i++) {
    /* saved in the given order; the loader lists them in data order.
     * "empty" (0 bytes) and "0.bias" share offset 32032; order by end. */
    int k = sl_safetensors_find(st, names[i]);
    cr_assert_geq(k, 0, "%s missing", names[i]);
    sl_tensor *t = sl_safetensors_tensor(st, k);
    cr_assert_eq(t->ndim, ts[i]->ndim);
    for (int dd = 0; dd < t->ndim; dd++) cr_assert_eq(t->shape[dd], ts[i]->shape[dd]);
    for (int64_t j = 0; j < t->numel; j++)
      cr_assert_eq(bits(t->data[j]), bits(ts[i]->data[j]), "%s[%lld]", names[i], (long long)j);
  }
  cr_assert_str_eq(sl_safetensors_name(st, 0), "z.last");
  cr_assert_str_eq(sl_safetensors_name(st, 1), names[1]);
  cr_assert_null(sl_safetensors_name(st, 4));
  cr_assert_eq(sl_safetensors_find(st, "nope"), -1);
  cr_assert_eq(sl_safetensors_meta_count(st), 2);
  cr_assert_str_eq(sl_safetensors_meta_get(st, "format"), "pt");
  cr_assert_str_eq(sl_safetensors_meta_get(st, "epoch"), "3 \\ \"x\"\t");
  cr_assert_str_eq(sl_safetensors_meta_key(st, 1), "epoch");
  cr_assert_null(sl_safetensors_meta_get(st, "missing"));
  sl_safetensors_free(st);
  for (int i = 0; i < 4; i++) sl_tensor_release(ts[i]);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors, header_bytes_match_the_reference_layout) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/h.safetensors", dir);
  float v[4] = {1, 2, 3, 4};
  sl_tensor *w = sl_tensor_from_array(2, IO_SHAPE(2, 2), v);
  const char *name = "0.weight", *k = "format", *val = "pt";
  cr_assert_eq(sl_safetensors_save(p, 1, &name, &w, 1, &k, &val), SL_OK);
  size_t n;
  unsigned char *raw = io_read(p, &n);
  /* what json.dumps(separators=(",", ":")) / serde_json produce, padded
   * with spaces to a multiple of 8 (here 96 + 0 bytes: 8 + 96 = 104) */
  const char *json = "{\"__metadata__\":{\"format\":\"pt\"},\"0.weight\":{\"dtype\":\"F32\","
                     "\"shape\":[2,2],\"data_offsets\":[0,16]}}";
  size_t jl = strlen(json), pad = (8 - jl % 8) % 8;
  cr_assert_eq(raw[0], (unsigned char)(jl + pad));
  for (int i = 1; i < 8; i++) cr_assert_eq(raw[i], 0);
  cr_assert(memcmp(raw + 8, json, jl) == 0, "header: %.*s", (int)jl, raw + 8);
  for (size_t i = 0; i < pad; i++) cr_assert_eq(raw[8 + jl + i], ' ');
  cr_assert_eq(n, 8 + jl + pad + 16);
  const unsigned char le_two[4] = {0x00, 0x00, 0x00, 0x40}; /* 2.0f little-endian */
  cr_assert(memcmp(raw + 8 + jl + pad + 4, le_two, 4) == 0);
  free(raw);
  sl_tensor_release(w);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors, loads_a_file_made_from_pytorch_tensors) {
  char p[512];
  io_data_path(p, sizeof p, "torch-ref.safetensors");
  sl_safetensors *st = sl_safetensors_load(p);
  cr_assert_not_null(st, "%s", sl_last_error());
  cr_assert_eq(sl_safetensors_count(st), 4);
  const char *order[4] = {"0.bias", "0.weight", "2.bias", "2.weight"};
  const float *ref[4] = {ref_0_bias, ref_0_weight, ref_2_bias, ref_2_weight};
  int64_t numel[4] = {3, 12, 2, 6};
  for (int i = 0; i < 4; i++) {
    cr_assert_str_eq(sl_safetensors_name(st, i), order[i]);
    sl_tensor *t = sl_safetensors_tensor(st, i);
    cr_assert_eq(t->numel, numel[i]);
    for (int64_t j = 0; j < t->numel; j++)
      cr_assert_eq(bits(t->data[j]), bits(ref[i][j]), "%s[%lld]", order[i], (long long)j);
  }
  sl_tensor *w = sl_safetensors_tensor(st, 1);
  cr_assert_eq(w->ndim, 2);
  cr_assert_eq(w->shape[0], 3);
  cr_assert_eq(w->shape[1], 4);
  cr_assert_str_eq(sl_safetensors_meta_get(st, "format"), "pt");
  cr_assert_str_eq(sl_safetensors_meta_get(st, "note"), "caf\xc3\xa9 \"quoted\""); /* \u00e9 */
  sl_safetensors_free(st);
  IO_LEAK_CHECK();
}

typedef struct bad_case {
  const char *header;
  size_t ndata;
  const char *msg;
} bad_case;

#define T32(name, shape, b, e) \
  "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const bad_case bad_cases[] = {
    {"{" T32("a", "[2]", 0, 8), 8, "expected ',' or '}'"},
    {"{\"a\" {\"dtype\":\"F32\"}}", 0, "expected ':'"},
    {"{" T32("a", "[2]", 0, 8) "," T32("b", "[2]", 4, 12) "}", 12,
     "tensor \"b\" (bytes 4..12) overlaps tensor \"a\" (ending at 8)"},
    {"{" T32("a", "[2]", 0, 8) "}", 4, "data_offsets [0, 8] lie outside the 4-byte data section"},
    {"{" T32("a", "[3]", 0, 8) "}", 8, "data_offsets [0, 8] span 8 bytes, shape [3] of F32 needs 12"},
    {"{\"a\":{\"dtype\":\"X99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "tensor \"a\" has unknown dtype \"X99\""},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
     "tensor \"a\" has dtype F64; only F32 and I64 are supported"},
    {"{" T32("a", "[2]", 0, 8) "," T32("a", "[2]", 8, 16) "}", 16, "duplicate tensor name \"a\""},
    {"{" T32("a", "[2]", 0, 8) "}", 12,
     "the data section has 12 bytes but the tensors cover 8 (trailing or missing data)"},
    {"{" T32("a", "[2]", 0, 8) "," T32("b", "[2]", 12, 20) "}", 20,
     "gap in the data section: bytes 8..12 belong to no tensor"},
    {"{" T32("a", "[2]", 0, 8) "} x", 8, "trailing characters after the JSON object"},
    {"{" T32("a", "[2.0]", 0, 8) "}", 8, "expected an integer, got a fractional number"},
    {"{" T32("a", "[-2]", 0, 8) "}", 8, "expected a non-negative integer"},
    {"{" T32("a", "[2]", 0, 8) "1}", 8, "expected ',' or '}'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"foo\":1}}", 8,
     "unknown key \"foo\" in tensor \"a\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor \"a\" has no \"data_offsets\""},
    {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "duplicate key \"dtype\" in tensor \"a\""},
    {"{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "metadata values must be strings"},
    {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate metadata key \"k\""},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key \"__metadata__\""},
    {"{" T32("a\\u0000b", "[2]", 0, 8) "}", 8, "NUL character (\\u0000) in a string"},
    {"{" T32("a\\udc00", "[2]", 0, 8) "}", 8, "lone low surrogate"},
    {"{" T32("a\\ud800x", "[2]", 0, 8) "}", 8, "high surrogate not followed by a low surrogate"},
    {"{" T32("a\\q", "[2]", 0, 8) "}", 8, "unknown escape '\\q'"},
    {"{" T32("a\xff", "[2]", 0, 8) "}", 8, "invalid UTF-8 in a string"},
    {"{\"a\x01\":{}}", 0, "control character in a string"},
    {"{\"abc", 0, "unterminated string"},
    {"{" T32("", "[2]", 0, 8) "}", 8, "empty tensor name"},
    {"{" T32("a", "[2]", 8, 0) "}", 8, "data_offsets [8, 0] end before they begin"},
    {"{" T32("a", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "too many entries in \"shape\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
     "too many entries in \"data_offsets\""},
    {"{" T32("a", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, "shape too large"},
    {"{" T32("a", "[99999999999999999999]", 0, 4) "}", 4, "integer too large"},
    {"{" T32("a", "[01]", 0, 4) "}", 4, "integer with a leading zero"},
    {"{\"a\":[[[[[[[[[[1]]]]]]]]]]}", 0, "expected '{'"},
    {"{\"a\":null}", 0, "expected '{'"},
    {"[1, 2]", 0, "header does not start with '{'"},
    {" {}", 0, "header does not start with '{'"},
};

Test(safetensors, malformed_files_are_rejected_with_specific_messages) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/bad.safetensors", dir);
  size_t ncases = sizeof bad_cases / sizeof bad_cases[0];
  for (size_t i = 0; i < ncases; i++) {
    st_write(p, bad_cases[i].header, 0, bad_cases[i].ndata);
    sl_safetensors *st = sl_safetensors_load(p);
    cr_assert_null(st, "case %zu (%s) was accepted", i, bad_cases[i].header);
    cr_assert_eq(sl_last_status(), SL_EFORMAT, "case %zu: %s", i, sl_last_error());
    cr_assert(strstr(sl_last_error(), bad_cases[i].msg) != NULL,
              "case %zu: error \"%s\" lacks \"%s\"", i, sl_last_error(), bad_cases[i].msg);
    cr_assert(strstr(sl_last_error(), p) != NULL, "case %zu: no file name", i);
  }
  cr_assert_geq(ncases, 30);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors, header_length_is_bounded_by_file_size_and_limit) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/len.safetensors", dir);
  io_write(p, "\x10\0\0", 3);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("file too short (3 bytes) for the 8-byte header length");
  st_write(p, "{}", 1000, 0);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("header length 1000 exceeds the file size (10 bytes)");
  st_write(p, "{}", 200000000, 0);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("header length 200000000 exceeds the 100000000-byte limit");
  st_write(p, "{}", UINT64_MAX, 0);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("header length 18446744073709551615 exceeds");
  st_write(p, "{}", 1, 0);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("header length 1 is too small");
  /* an empty object (no tensors) is a valid file */
  st_write(p, "{}      ", 0, 0);
  sl_safetensors *st = sl_safetensors_load(p);
  cr_assert_not_null(st, "%s", sl_last_error());
  cr_assert_eq(sl_safetensors_count(st), 0);
  sl_safetensors_free(st);
  /* a 0-dim tensor (shape []) loads as shape [1]; 4 data bytes 0,7,14,21 */
  st_write(p, "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4);
  st = sl_safetensors_load(p);
  cr_assert_not_null(st, "%s", sl_last_error());
  cr_assert_eq(sl_safetensors_tensor(st, 0)->ndim, 1);
  cr_assert_eq(sl_safetensors_tensor(st, 0)->shape[0], 1);
  cr_assert_eq(bits(sl_safetensors_tensor(st, 0)->data[0]), 0x150e0700u);
  sl_safetensors_free(st);
  cr_assert_null(sl_safetensors_load(dir));
  IO_ASSERT_ERR("is not a regular file");
  cr_assert_null(sl_safetensors_load("/nonexistent/m.safetensors"));
  cr_assert_eq(sl_last_status(), SL_EIO);
  IO_ASSERT_ERR("cannot open /nonexistent/m.safetensors");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

/* Saves {"w": full(n, v)} to p. */
static int save_one(const char *p, int64_t n, float v) {
  sl_tensor *t = sl_tensor_full(1, IO_SHAPE(n), v);
  const char *name = "w";
  int st = sl_safetensors_save(p, 1, &name, &t, 0, NULL, NULL);
  sl_tensor_release(t);
  return st;
}

static float load_first(const char *p, int64_t *numel) {
  sl_safetensors *st = sl_safetensors_load(p);
  cr_assert_not_null(st, "%s", sl_last_error());
  sl_tensor *t = sl_safetensors_tensor(st, 0);
  *numel = t->numel;
  float v = t->data[0];
  sl_safetensors_free(st);
  return v;
}

Test(safetensors, overwrite_replaces_file_with_normal_permissions) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/ck.safetensors", dir);
  mode_t old = umask(022);
  cr_assert_eq(save_one(p, 3, 1.0f), SL_OK);
  cr_assert_eq(save_one(p, 5, 2.0f), SL_OK);
  umask(old);
  int64_t n;
  cr_assert_eq(load_first(p, &n), 2.0f);
  cr_assert_eq(n, 5);
  struct stat sb;
  cr_assert_eq(stat(p, &sb), 0);
  cr_assert_eq(sb.st_mode & 0777, 0644);
  cr_assert_eq(io_count_entries(dir), 1, "temporary file left behind");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors, failed_write_leaves_the_previous_checkpoint_intact) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/ck.safetensors", dir);
  cr_assert_eq(save_one(p, 10, 7.0f), SL_OK);
  /* a 4 MB save under a 64 KB file-size limit fails mid-write (EFBIG) */
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 65536;
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  int st = save_one(p, 1 << 20, 9.0f);
  setrlimit(RLIMIT_FSIZE, &old);
  cr_assert_eq(st, SL_EIO);
  IO_ASSERT_ERR("existing file left untouched");
  IO_ASSERT_ERR("File too large");
  int64_t n;
  cr_assert_eq(load_first(p, &n), 7.0f);
  cr_assert_eq(n, 10);
  cr_assert_eq(io_count_entries(dir), 1, "temporary file left behind");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors, save_onto_a_directory_or_into_a_missing_one_fails_cleanly) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/ck", dir);
  cr_assert_eq(mkdir(p, 0755), 0);
  cr_assert_eq(save_one(p, 4, 1.0f), SL_EIO);
  IO_ASSERT_ERR("cannot rename the temporary file to");
  struct stat sb;
  cr_assert_eq(stat(p, &sb), 0);
  cr_assert(S_ISDIR(sb.st_mode));
  cr_assert_eq(io_count_entries(dir), 1, "temporary file left behind");
  rmdir(p);
  snprintf(p, sizeof p, "%s/missing/ck.safetensors", dir);
  cr_assert_eq(save_one(p, 4, 1.0f), SL_EIO);
  IO_ASSERT_ERR("cannot create a temporary file next to");
  IO_ASSERT_ERR("No such file or directory");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors, save_rejects_bad_names_before_touching_the_disk) {
  sl_tensor *t = sl_tensor_zeros(1, IO_SHAPE(2));
  sl_tensor *ts[2] = {t, t};
  const char *dup[2] = {"a", "a"}, *meta[1] = {"__metadata__"}, *empty[1] = {""};
  const char *p = "/nonexistent-dir/x.safetensors";
  cr_assert_eq(sl_safetensors_save(p, 2, dup, ts, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("duplicate tensor name \"a\"");
  cr_assert_eq(sl_safetensors_save(p, 1, meta, ts, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("\"__metadata__\" is reserved");
  cr_assert_eq(sl_safetensors_save(p, 1, empty, ts, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("tensor 0 has an empty name");
  sl_tensor *nul[1] = {NULL};
  cr_assert_eq(sl_safetensors_save(p, 1, dup, nul, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("tensor \"a\" is NULL");
  const char *k[2] = {"x", "x"}, *v[2] = {"1", "2"};
  cr_assert_eq(sl_safetensors_save(p, 1, dup, ts, 2, k, v), SL_EINVAL);
  IO_ASSERT_ERR("duplicate metadata key \"x\"");
  sl_tensor_release(t);
  IO_LEAK_CHECK();
}

Test(safetensors, every_truncation_and_byte_flip_is_handled_without_crashing) {
  char src[512], dir[64], p[128];
  io_data_path(src, sizeof src, "torch-ref.safetensors");
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/fuzz.safetensors", dir);
  size_t n;
  unsigned char *good = io_read(src, &n);
  for (size_t len = 0; len < n; len++) { /* every proper prefix is rejected */
    io_write(p, good, len);
    cr_assert_null(sl_safetensors_load(p), "prefix of %zu bytes accepted", len);
  }
  int accepted = 0;
  unsigned char *b = malloc(n);
  for (size_t i = 0; i < n; i++) { /* flipping any header bit: reject or load sanely */
    for (int bit = 0; bit < 8; bit += 3) {
      memcpy(b, good, n);
      b[i] ^= (unsigned char)(1u << bit);
      io_write(p, b, n);
      sl_safetensors *st = sl_safetensors_load(p);
      if (st) {
        accepted++;
        int64_t total = 0;
        for (int k = 0; k < sl_safetensors_count(st); k++) total += sl_safetensors_tensor(st, k)->numel;
        cr_assert_eq(total, 23, "flip at byte %zu bit %d", i, bit); /* 12 + 3 + 6 + 2 floats */
        sl_safetensors_free(st);
      } else {
        cr_assert_eq(sl_last_status(), SL_EFORMAT, "%s", sl_last_error());
      }
    }
  }
  cr_assert_gt(accepted, 0); /* flips inside the data section are just other floats */
  free(b);
  free(good);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}
