/*
 * Data and checkpoint files: IDX (the MNIST format, plain or gzip), numeric
 * CSV tables, an in-memory dataset with standardization and a batch
 * iterator, and safetensors checkpoints (atomic save, hardened load).
 *
 * Conventions: everything is 0-based (rows, columns, class labels); the Lua
 * layer adds 1 (docs/api.md). Functions return SL_OK / a tensor /
 * an object on success, and a negative SL_E* code / NULL on failure with a
 * message in sl_last_error() that names the file. Nothing here prints,
 * exits or aborts; a malformed file is an error, never a read past a buffer.
 * Ownership: every tensor or object returned through a `**` out-parameter or
 * as a return value is a new reference owned by the caller
 * (sl_tensor_release / the matching *_free), unless documented "borrowed".
 */
#ifndef SL_IO_H
#define SL_IO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tensor/random.h"
#include "../tensor/tensor.h"

/* ---- IDX ----------------------------------------------------------------
 * Format: magic bytes 0x00 0x00 <dtype> <ndim>, ndim big-endian uint32
 * dims, then the data, big-endian, row-major. dtype: 0x08 uint8, 0x09 int8,
 * 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. The file may be
 * gzip-compressed (detected from its contents, not its name). */

/* Largest data section sl_idx_read accepts (bytes, uncompressed). */
#define SL_IDX_MAX_BYTES ((int64_t)1 << 34)

/* Reads an IDX file into a new float32 tensor with the file's shape
 * (ndim 1..SL_MAX_DIMS). Each value v becomes (float)((double)v * scale);
 * pass 1.0 for raw values (labels), 1.0 / 255 for images in [0, 1] (equal to
 * torchvision's float32 v / 255 for every uint8 v). Errors: SL_EIO (cannot
 * open / read), SL_EFORMAT (bad magic, unknown dtype, bad ndim, a size that
 * overflows or exceeds SL_IDX_MAX_BYTES, a data section shorter or longer
 * than the header says -- the message names the file and both byte counts --,
 * corrupt gzip stream), SL_ENOMEM. */
sl_tensor *sl_idx_read(const char *path, double scale);

/* Default location of Debian's dataset-fashion-mnist package. */
#define SL_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Loads the Fashion-MNIST training (60000) or test (10000) split from dir
 * (NULL = SL_FASHION_MNIST_DIR): files {train,t10k}-{images-idx3,labels-idx1}
 * -ubyte[.gz]. *x becomes an N x 784 tensor with values v / 255 in [0, 1],
 * *y an N-element tensor of class labels 0..9 stored as floats. On failure
 * both are left NULL; a missing file gives SL_EIO with a message naming the
 * path and the Debian package to install. Images and labels are checked to
 * be N x 28 x 28 and N with the same N, labels to lie in 0..9. */
int sl_fashion_mnist_load(const char *dir, bool train, sl_tensor **x, sl_tensor **y);

/* ---- CSV ----------------------------------------------------------------
 * A numeric table: one row per line (\n or \r\n), cells separated by the
 * delimiter, every cell a number parsed by strtod (surrounding spaces and a
 * pair of double quotes are allowed). Blank lines at the end are ignored;
 * anything else that is not a number is an error naming the line and column
 * (both 1-based, as an editor shows them). Gzip-compressed files are read
 * transparently. */
typedef struct sl_csv_options {
  int header;           /* -1 auto-detect (a first line with a non-numeric
                           cell is a header), 0 no header, 1 header */
  const char *label;    /* name of the label column (needs a header), or NULL */
  int label_index;      /* 0-based label column when label == NULL; -1 none */
  char delimiter;       /* 0 means ',' */
} sl_csv_options;

/* Default options: auto header, no label column, ','. */
sl_csv_options sl_csv_defaults(void);

/* Reads path (opt NULL = defaults). *x becomes rows x features (the label
 * column removed), *y a rows-element tensor of the label column, or NULL when
 * there is no label column (y itself may be NULL then). If names is not NULL
 * and the file has a header, *names receives a malloc'ed array of
 * the feature column names (*ncols entries, each malloc'ed; free with
 * sl_csv_free_names); otherwise *names = NULL. Errors: SL_EIO, SL_EFORMAT
 * (empty file, no data rows, ragged row, bad cell, unknown label column),
 * SL_EINVAL (bad options). On failure nothing is returned. */
int sl_csv_read(const char *path, const sl_csv_options *opt, sl_tensor **x,
                sl_tensor **y, char ***names, int64_t *ncols);
void sl_csv_free_names(char **names, int64_t n);

/* ---- dataset ------------------------------------------------------------
 * x: N samples along dim 0 (N x D, or N x anything), y: N (labels) or N x K
 * (targets), or none. The dataset holds its own references to x and y. */
typedef struct sl_dataset sl_dataset;

/* New dataset over x and y (y may be NULL). Retains both tensors (the caller
 * keeps its references). SL_ESHAPE if y's first dim differs from x's. */
sl_dataset *sl_dataset_new(sl_tensor *x, sl_tensor *y);
void sl_dataset_free(sl_dataset *ds);
int64_t sl_dataset_size(const sl_dataset *ds);
/* Borrowed: valid while ds lives (retain to keep longer). y may be NULL. */
sl_tensor *sl_dataset_x(const sl_dataset *ds);
sl_tensor *sl_dataset_y(const sl_dataset *ds);
/* The first n samples (n <= size) as a new dataset holding COPIES, so
 * standardizing one never changes the other. */
sl_dataset *sl_dataset_subset(const sl_dataset *ds, int64_t n);

/* Global standardization x = (x - mean) / std with one scalar mean and std
 * over every element of x (the Fashion-MNIST recipe). If mean_in and std_in
 * are both non-NULL they are used as given (std must be > 0), so a test set
 * reuses the training statistics; if both are NULL they are computed from x
 * in double precision: mean, and the unbiased (n - 1) std as torch.std(); a
 * zero std is replaced by 1. The values used are stored in *mean_out and
 * *std_out when those are non-NULL. The arithmetic per element is float32:
 * (x - (float)mean) / (float)std. */
int sl_dataset_standardize(sl_dataset *ds, const double *mean_in, const double *std_in,
                           double *mean_out, double *std_out);
/* Per-feature standardization (x must be N x D): each column j uses mean[j]
 * and std[j]. Given statistics (both non-NULL, D-element tensors) are used as
 * is; otherwise they are computed (double accumulation, unbiased std, zeros
 * replaced by 1) and returned as new D-element tensors through mean_out /
 * std_out when those are non-NULL. */
int sl_dataset_standardize_features(sl_dataset *ds, const sl_tensor *mean_in,
                                    const sl_tensor *std_in, sl_tensor **mean_out,
                                    sl_tensor **std_out);

/* ---- batch iterator -----------------------------------------------------
 *   sl_batch_iter *it = sl_batch_iter_new(ds, 128, true, false, rng);
 *   for (int epoch = 0; epoch < E; epoch++) {
 *     sl_batch_iter_reset(it, rng);              // not needed for epoch 0
 *     sl_tensor *xb, *yb;
 *     while ((st = sl_batch_iter_next(it, &xb, &yb)) > 0) { ... }
 *     if (st < 0) error;
 *   }
 *   sl_batch_iter_free(it);
 * Each epoch visits every sample exactly once (drop_last drops the final
 * incomplete batch), in order or through a Fisher-Yates permutation drawn
 * from rng with sl_rng_below (the permutation restarts from the identity
 * each epoch, so it depends only on the rng state). No allocation happens
 * per batch once the buffers have been created: the permutation is
 * allocated by _new, the batch buffers at the first batch (their shape
 * shrinks in place for a final smaller batch). */
typedef struct sl_batch_iter sl_batch_iter;

/* Retains ds (through an internal reference count, so ds may be freed by
 * the caller first). batch_size >= 1. rng is used only when shuffle is true
 * (then it must not be NULL) and is not kept. */
sl_batch_iter *sl_batch_iter_new(sl_dataset *ds, int64_t batch_size, bool shuffle,
                                 bool drop_last, sl_rng *rng);
/* Starts a new epoch (reshuffles when shuffling). */
int sl_batch_iter_reset(sl_batch_iter *it, sl_rng *rng);
/* Fills the iterator's own reused buffers with the next batch and points
 * *xb / *yb at them (borrowed: overwritten by the next call, released by
 * _free; retain to keep). yb may be NULL; *yb is NULL when ds has no y.
 * Returns 1 when a batch was produced, 0 at the end of the epoch, < 0 on
 * error. */
int sl_batch_iter_next(sl_batch_iter *it, sl_tensor **xb, sl_tensor **yb);
/* Same, into caller-owned buffers: *xb / *yb are created when NULL and
 * resized (sl_tensor_resize) when their shape differs from the batch's. */
int sl_batch_iter_next_into(sl_batch_iter *it, sl_tensor **xb, sl_tensor **yb);
/* Batches per epoch. */
int64_t sl_batch_iter_count(const sl_batch_iter *it);
/* Data-parallel sharding (docs/distributed.md): from now on the iterator
 * walks global batches of batch_size * count samples of its permutation and
 * produces only part `index` (0-based) of each: count near-equal contiguous
 * parts, exactly batch_size samples each for a full global batch. A final
 * global batch smaller than count is dropped, so every part is non-empty and
 * all count shards yield the same number of batches. Call before the first
 * batch; count = 1 is the unsharded default. */
int sl_batch_iter_shard(sl_batch_iter *it, int64_t index, int64_t count);
/* The sample indices of the batch last produced (borrowed, *n entries). */
const int64_t *sl_batch_iter_indices(const sl_batch_iter *it, int64_t *n);
void sl_batch_iter_free(sl_batch_iter *it);

/* ---- safetensors --------------------------------------------------------
 * File: 8-byte little-endian header length n, n bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *  ..., "__metadata__": {"key": "value", ...}} padded with spaces to a
 * multiple of 8, then the raw little-endian data; offsets are relative to
 * the start of the data section. */

/* Largest header accepted by the loader (as the reference implementation). */
#define SL_SAFETENSORS_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

/* Writes n named float32 tensors (in the given order, contiguous) and nmeta
 * string key/value pairs ("__metadata__", omitted when nmeta == 0). Names
 * must be non-empty, unique and not "__metadata__". Atomic: the file is
 * written to a temporary file in the same directory, flushed, fsync'ed and
 * renamed over path; on any failure the temporary file is removed and an
 * existing file at path is left untouched. Errors: SL_EINVAL, SL_EIO,
 * SL_ENOMEM. */
int sl_safetensors_save(const char *path, int n, const char *const *names,
                        sl_tensor *const *tensors, int nmeta,
                        const char *const *meta_keys, const char *const *meta_values);

/* Per-tensor storage formats for sl_safetensors_save_ex: a dtype, optionally
 * OR'ed with SL_ST_SCALAR (a one-element tensor written with shape [], as
 * PyTorch stores 0-dim tensors such as BatchNorm's num_batches_tracked). */
enum { SL_ST_F32 = 0, SL_ST_I64 = 1, SL_ST_SCALAR = 0x100 };

/* sl_safetensors_save with formats[i] for tensor i (NULL: all SL_ST_F32).
 * An SL_ST_I64 tensor's values must be integers (exact in float32, written as
 * int64): SL_EINVAL naming the tensor and element otherwise; SL_ST_SCALAR
 * needs numel == 1. */
int sl_safetensors_save_ex(const char *path, int n, const char *const *names,
                           sl_tensor *const *tensors, const int *formats, int nmeta,
                           const char *const *meta_keys, const char *const *meta_values);

typedef struct sl_safetensors sl_safetensors;

/* Loads every tensor of a safetensors file. Dtypes F32 and I64 are accepted
 * (others are rejected with a message naming the dtype); I64 values load as
 * floats and must be exactly representable in float32 (|v| <= 2^24, or a
 * larger value float32 holds exactly), else SL_EFORMAT naming the tensor,
 * element and value; sl_safetensors_dtype tells which it was. A 0-dim
 * tensor (shape []) loads as shape [1]. The file is fully validated before
 * any tensor memory is allocated: header length bounded by the file size and
 * SL_SAFETENSORS_MAX_HEADER, strict JSON (no duplicate keys, no unknown
 * fields, no floats or negative numbers), unique names, offsets inside the
 * data section, end - begin == numel * 4 (8 for I64), and the tensors tiling the data
 * section exactly (no gap, no overlap, no trailing bytes). Errors: SL_EIO,
 * SL_EFORMAT, SL_ENOMEM. Tensors are listed in the order of their data. */
sl_safetensors *sl_safetensors_load(const char *path);
void sl_safetensors_free(sl_safetensors *st);
int sl_safetensors_count(const sl_safetensors *st);
/* Borrowed name / tensor of entry i (0 <= i < count), NULL if out of range. */
const char *sl_safetensors_name(const sl_safetensors *st, int i);
sl_tensor *sl_safetensors_tensor(const sl_safetensors *st, int i);
/* SL_ST_F32 or SL_ST_I64 (the dtype in the file) of entry i, -1 if out of range. */
int sl_safetensors_dtype(const sl_safetensors *st, int i);
/* The same | SL_ST_SCALAR when the file stores it with shape [] (0-dim): the
 * format sl_safetensors_save_ex writes it back with. -1 if out of range. */
int sl_safetensors_format(const sl_safetensors *st, int i);
/* Index of the tensor called name, or -1. */
int sl_safetensors_find(const sl_safetensors *st, const char *name);
/* Metadata entries (borrowed strings); lookup returns NULL if absent. */
int sl_safetensors_meta_count(const sl_safetensors *st);
const char *sl_safetensors_meta_key(const sl_safetensors *st, int i);
const char *sl_safetensors_meta_value(const sl_safetensors *st, int i);
const char *sl_safetensors_meta_get(const sl_safetensors *st, const char *key);

/* Loading into existing tensors (selut.load(path, net)): all or nothing.
 * sl_safetensors_match compares st with n targets (names[i] -> dst[i];
 * formats[i] SL_ST_I64 makes target i take integers only; formats may be
 * NULL) before anything is copied: for each target in order, a name st
 * lacks (only when strict), a shape that differs, or a non-integer element
 * for an I64 target; then (strict) every entry of st no target names.
 * Returns how many mismatches there are, *first describing the first
 * (-1 with SL_ENOMEM). sl_safetensors_copy_into then copies each entry a
 * target names into it. */
enum { SL_ST_MISSING = 1, SL_ST_SHAPE, SL_ST_NOT_INTEGER, SL_ST_EXTRA };
typedef struct sl_st_mismatch {
  int kind;        /* SL_ST_MISSING ... SL_ST_EXTRA */
  int target;      /* index into names/dst (not for SL_ST_EXTRA) */
  int entry;       /* index in st (not for SL_ST_MISSING) */
  int64_t element; /* 0-based (SL_ST_NOT_INTEGER) */
} sl_st_mismatch;
int sl_safetensors_match(const sl_safetensors *st, int n, const char *const *names, sl_tensor *const *dst,
                         const int *formats, int strict, sl_st_mismatch *first);
int sl_safetensors_copy_into(const sl_safetensors *st, int n, const char *const *names, sl_tensor *const *dst);

#endif
