/* ONNX writer and reader over protobuf-c (see onnx.h). The writer keeps
 * every piece of the model in one arena of sl_malloc blocks, freed together;
 * the reader unpacks with an allocator that charges the memory account, then
 * validates the graph once so the getters can trust it. */
#include "onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "onnx.pb-c.h"

#include "../tensor/alloc.h"
#include "../tensor/error.h"

/* Strings the model points at that never change (protobuf-c wants char *). */
static char str_empty[] = "", str_selut[] = "selut", str_batch[] = "N";

/* ---- arena ---- */

typedef struct block {
  struct block *next;
  max_align_t align[];
} block;

struct sl_onnx_writer {
  block *arena;
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset;
  Onnx__OperatorSetIdProto *opsets[1];
  size_t cap_node, cap_init, cap_in, cap_out, cap_attr;
  Onnx__NodeProto *last;
};

static void *arena_alloc(sl_onnx_writer *w, size_t n) {
  if (n > SIZE_MAX - sizeof(block)) return sl_fail(SL_ENOMEM, "onnx: allocation too large"), NULL;
  block *b = sl_malloc(sizeof(block) + n);
  if (!b) return NULL;
  memset(b->align, 0, n);
  b->next = w->arena;
  w->arena = b;
  return b->align;
}

static char *arena_str(sl_onnx_writer *w, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = arena_alloc(w, n);
  if (p) memcpy(p, s, n);
  return p;
}

/* Appends item to a pointer array of capacity *cap (doubling in the arena). */
static int push(sl_onnx_writer *w, void ***arr, size_t *n, size_t *cap, void *item) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    void **na = arena_alloc(w, nc * sizeof *na);
    if (!na) return SL_ENOMEM;
    if (*n) memcpy(na, *arr, *n * sizeof *na);
    *arr = na;
    *cap = nc;
  }
  (*arr)[(*n)++] = item;
  return SL_OK;
}

sl_onnx_writer *sl_onnx_writer_new(int opset, const char *producer) {
  sl_onnx_writer *w = sl_calloc(1, sizeof *w);
  if (!w) return NULL;
  Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
  Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
  Onnx__OperatorSetIdProto o = ONNX__OPERATOR_SET_ID_PROTO__INIT;
  w->model = m, w->graph = g, w->opset = o;
  w->opset.domain = str_empty;
  w->opset.has_version = 1;
  w->opset.version = opset;
  w->opsets[0] = &w->opset;
  w->model.has_ir_version = 1;
  w->model.ir_version = 8; /* ONNX 1.10+ (opsets up to 17 need IR >= 8) */
  w->model.n_opset_import = 1;
  w->model.opset_import = w->opsets;
  w->model.producer_name = arena_str(w, producer ? producer : "selut");
  w->graph.name = str_selut;
  w->model.graph = &w->graph;
  if (!w->model.producer_name) {
    sl_onnx_writer_free(w);
    return NULL;
  }
  return w;
}

void sl_onnx_writer_free(sl_onnx_writer *w) {
  if (!w) return;
  for (block *b = w->arena, *n; b; b = n) {
    n = b->next;
    sl_free(b);
  }
  sl_free(w);
}

int sl_onnx_add_initializer(sl_onnx_writer *w, const char *name, const sl_tensor *t) {
  Onnx__TensorProto *p = arena_alloc(w, sizeof *p);
  if (!p) return SL_ENOMEM;
  Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
  *p = init;
  p->name = arena_str(w, name);
  p->n_dims = (size_t)t->ndim;
  p->dims = arena_alloc(w, (size_t)t->ndim * sizeof *p->dims);
  size_t bytes = (size_t)t->numel * sizeof(float);
  p->raw_data.data = arena_alloc(w, bytes ? bytes : 1);
  if (!p->name || !p->dims || !p->raw_data.data) return SL_ENOMEM;
  for (int i = 0; i < t->ndim; i++) p->dims[i] = t->shape[i];
  p->has_data_type = 1;
  p->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  p->has_raw_data = 1;
  p->raw_data.len = bytes; /* little-endian float32, ONNX's raw_data layout */
  if (bytes) memcpy(p->raw_data.data, t->data, bytes);
  return push(w, (void ***)&w->graph.initializer, &w->graph.n_initializer, &w->cap_init, p);
}

int sl_onnx_add_initializer_i64(sl_onnx_writer *w, const char *name, int ndim, const int64_t *shape,
                                const int64_t *data) {
  if (ndim < 0 || ndim > SL_MAX_DIMS)
    return sl_fail(SL_EINVAL, "onnx: initializer '%s' has %d dims (0 to %d expected)", name, ndim, SL_MAX_DIMS);
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0 || shape[i] > ((int64_t)1 << 40))
      return sl_fail(SL_EINVAL, "onnx: initializer '%s' dim %d is %" PRId64 " (0 to 2^40 expected)", name, i, shape[i]);
    numel *= shape[i];
  }
  Onnx__TensorProto *p = arena_alloc(w, sizeof *p);
  if (!p) return SL_ENOMEM;
  Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
  *p = init;
  p->name = arena_str(w, name);
  p->n_dims = (size_t)ndim;
  p->dims = arena_alloc(w, (size_t)(ndim ? ndim : 1) * sizeof *p->dims);
  size_t bytes = (size_t)numel * sizeof(int64_t);
  p->raw_data.data = arena_alloc(w, bytes ? bytes : 1);
  if (!p->name || !p->dims || !p->raw_data.data) return SL_ENOMEM;
  for (int i = 0; i < ndim; i++) p->dims[i] = shape[i];
  p->has_data_type = 1;
  p->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  p->has_raw_data = 1;
  p->raw_data.len = bytes; /* little-endian int64, ONNX's raw_data layout */
  if (bytes) memcpy(p->raw_data.data, data, bytes);
  return push(w, (void ***)&w->graph.initializer, &w->graph.n_initializer, &w->cap_init, p);
}

static Onnx__ValueInfoProto *value_info(sl_onnx_writer *w, const char *name, int ndim, const int64_t *shape,
                                        bool i64) {
  Onnx__ValueInfoProto *v = arena_alloc(w, sizeof *v);
  Onnx__TypeProto *tp = arena_alloc(w, sizeof *tp);
  Onnx__TypeProto__Tensor *tt = arena_alloc(w, sizeof *tt);
  Onnx__TensorShapeProto *sh = arena_alloc(w, sizeof *sh);
  Onnx__TensorShapeProto__Dimension **dims = arena_alloc(w, (size_t)(ndim ? ndim : 1) * sizeof *dims);
  if (!v || !tp || !tt || !sh || !dims) return NULL;
  Onnx__ValueInfoProto vi = ONNX__VALUE_INFO_PROTO__INIT;
  Onnx__TypeProto ti = ONNX__TYPE_PROTO__INIT;
  Onnx__TypeProto__Tensor tti = ONNX__TYPE_PROTO__TENSOR__INIT;
  Onnx__TensorShapeProto si = ONNX__TENSOR_SHAPE_PROTO__INIT;
  *v = vi, *tp = ti, *tt = tti, *sh = si;
  for (int i = 0; i < ndim; i++) {
    Onnx__TensorShapeProto__Dimension di = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    if (!(dims[i] = arena_alloc(w, sizeof *dims[i]))) return NULL;
    *dims[i] = di;
    if (shape[i] < 0) {
      dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dims[i]->dim_param = str_batch;
    } else {
      dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dims[i]->dim_value = shape[i];
    }
  }
  sh->n_dim = (size_t)ndim;
  sh->dim = dims;
  tt->has_elem_type = 1;
  tt->elem_type = i64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  tt->shape = sh;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  v->type = tp;
  v->name = arena_str(w, name);
  return v->name ? v : NULL;
}

int sl_onnx_add_input(sl_onnx_writer *w, const char *name, int ndim, const int64_t *shape, bool int64) {
  Onnx__ValueInfoProto *v = value_info(w, name, ndim, shape, int64);
  return v ? push(w, (void ***)&w->graph.input, &w->graph.n_input, &w->cap_in, v) : SL_ENOMEM;
}

int sl_onnx_add_output(sl_onnx_writer *w, const char *name, int ndim, const int64_t *shape) {
  Onnx__ValueInfoProto *v = value_info(w, name, ndim, shape, false);
  return v ? push(w, (void ***)&w->graph.output, &w->graph.n_output, &w->cap_out, v) : SL_ENOMEM;
}

static char **str_array(sl_onnx_writer *w, int n, const char *const *s) {
  char **a = arena_alloc(w, (size_t)(n ? n : 1) * sizeof *a);
  for (int i = 0; a && i < n; i++)
    if (!(a[i] = arena_str(w, s[i]))) return NULL;
  return a;
}

int sl_onnx_add_node(sl_onnx_writer *w, const char *op, int nin, const char *const *in, int nout,
                     const char *const *out) {
  Onnx__NodeProto *n = arena_alloc(w, sizeof *n);
  if (!n) return SL_ENOMEM;
  Onnx__NodeProto ni = ONNX__NODE_PROTO__INIT;
  *n = ni;
  char name[64];
  snprintf(name, sizeof name, "%s_%zu", op, w->graph.n_node);
  n->op_type = arena_str(w, op);
  n->name = arena_str(w, name);
  n->n_input = (size_t)nin;
  n->input = str_array(w, nin, in);
  n->n_output = (size_t)nout;
  n->output = str_array(w, nout, out);
  if (!n->op_type || !n->name || !n->input || !n->output) return SL_ENOMEM;
  w->last = n;
  w->cap_attr = 0;
  return push(w, (void ***)&w->graph.node, &w->graph.n_node, &w->cap_node, n);
}

static Onnx__AttributeProto *new_attr(sl_onnx_writer *w, const char *name, Onnx__AttributeProto__AttributeType t) {
  if (!w->last) return sl_fail(SL_EINVAL, "onnx: attribute '%s' before any node", name), NULL;
  Onnx__AttributeProto *a = arena_alloc(w, sizeof *a);
  if (!a) return NULL;
  Onnx__AttributeProto ai = ONNX__ATTRIBUTE_PROTO__INIT;
  *a = ai;
  a->name = arena_str(w, name);
  a->has_type = 1;
  a->type = t;
  if (!a->name || push(w, (void ***)&w->last->attribute, &w->last->n_attribute, &w->cap_attr, a)) return NULL;
  return a;
}

int sl_onnx_attr_float(sl_onnx_writer *w, const char *name, float v) {
  Onnx__AttributeProto *a = new_attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (!a) return sl_last_status();
  a->has_f = 1;
  a->f = v;
  return SL_OK;
}

int sl_onnx_attr_int(sl_onnx_writer *w, const char *name, int64_t v) {
  Onnx__AttributeProto *a = new_attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (!a) return sl_last_status();
  a->has_i = 1;
  a->i = v;
  return SL_OK;
}

int sl_onnx_attr_ints(sl_onnx_writer *w, const char *name, int n, const int64_t *v) {
  Onnx__AttributeProto *a = new_attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  if (!a) return sl_last_status();
  a->ints = arena_alloc(w, (size_t)(n ? n : 1) * sizeof *a->ints);
  if (!a->ints) return SL_ENOMEM;
  a->n_ints = (size_t)n;
  memcpy(a->ints, v, (size_t)n * sizeof *v);
  return SL_OK;
}

int sl_onnx_save(sl_onnx_writer *w, const char *path) {
  size_t n = onnx__model_proto__get_packed_size(&w->model);
  uint8_t *buf = sl_malloc(n ? n : 1);
  if (!buf) return sl_last_status();
  onnx__model_proto__pack(&w->model, buf);
  char tmp[4200];
  int k = snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  if (k < 0 || (size_t)k >= sizeof tmp) {
    sl_free(buf);
    return sl_fail(SL_EINVAL, "onnx.save: path too long: %s", path);
  }
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    sl_free(buf);
    return sl_fail(SL_EIO, "onnx.save: cannot create %s: %s", tmp, strerror(e));
  }
  bool ok = fwrite(buf, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int e = errno;
  ok = fclose(f) == 0 && ok;
  sl_free(buf);
  if (!ok || rename(tmp, path) != 0) {
    if (ok) e = errno;
    unlink(tmp);
    return sl_fail(SL_EIO, "onnx.save: cannot write %s: %s (existing file left untouched)", path, strerror(e));
  }
  return SL_OK;
}

/* ---- reading ---- */

struct sl_onnx_model {
  Onnx__ModelProto *p;
  int64_t opset;
};

static void *pb_alloc(void *ud, size_t n) {
  (void)ud;
  return sl_malloc(n ? n : 1);
}
static void pb_free(void *ud, void *p) {
  (void)ud;
  sl_free(p);
}
static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

static int64_t tensor_numel(const Onnx__TensorProto *t, bool *ok) {
  int64_t n = 1;
  *ok = true;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || (t->dims[i] && n > INT64_MAX / t->dims[i])) {
      *ok = false;
      return 0;
    }
    n *= t->dims[i];
  }
  return n;
}

static const char *find_name(char **names, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (names[i] && strcmp(names[i], s) == 0) return names[i];
  return NULL;
}

/* A stored tensor (an initializer, or a Constant's value attribute) must
 * live inside the file, be float32 or int64, and hold exactly the elements
 * its dims declare: the getters then copy without further checks. */
static int check_tensor(const Onnx__TensorProto *t, const char *what, const char *nm, const char *path) {
  if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
      t->n_external_data)
    return sl_fail(SL_EFORMAT, "onnx.load: %s: %s '%s' uses external data (not supported: save the model "
                   "with its weights inside the file)", path, what, nm);
  bool i64 = t->has_data_type && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  if (!t->has_data_type || (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && !i64))
    return sl_fail(SL_EFORMAT, "onnx.load: %s: %s '%s' has data type %d (only float32, type 1, and int64 "
                   "shapes/indices, type 7, are supported)", path, what, nm, t->has_data_type ? (int)t->data_type : 0);
  if (t->n_dims > SL_MAX_DIMS)
    return sl_fail(SL_EFORMAT, "onnx.load: %s: %s '%s' has %zu dims (at most %d)", path, what, nm, t->n_dims,
                   SL_MAX_DIMS);
  bool ok;
  int64_t n = tensor_numel(t, &ok);
  size_t esize = i64 ? sizeof(int64_t) : sizeof(float);
  size_t have = t->has_raw_data ? t->raw_data.len / esize : i64 ? t->n_int64_data : t->n_float_data;
  if (!ok || (t->has_raw_data && t->raw_data.len % esize) || (int64_t)have != n)
    return sl_fail(SL_EFORMAT, "onnx.load: %s: %s '%s' holds %zu %s but its dims say %" PRId64, path, what, nm,
                   have, i64 ? "int64s" : "floats", ok ? n : (int64_t)-1);
  return SL_OK;
}

/* Every node input must be produced earlier (a graph input, an initializer
 * or an earlier node's output): this refuses cycles and dangling edges. */
static int check_graph(const Onnx__GraphProto *g, const char *path) {
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *t = g->initializer[i];
    int st = check_tensor(t, "initializer", t->name ? t->name : "?", path);
    if (st) return st;
  }
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *nd = g->node[i];
    if (!nd->op_type) return sl_fail(SL_EFORMAT, "onnx.load: %s: node %zu has no op_type", path, i + 1);
    if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx") != 0)
      return sl_fail(SL_EFORMAT, "onnx.load: %s: node %zu (%s) is in domain '%s' (only the default ONNX domain is "
                     "supported)", path, i + 1, nd->op_type, nd->domain);
    for (size_t k = 0; k < nd->n_attribute; k++) {
      const Onnx__AttributeProto *a = nd->attribute[k];
      if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR) continue;
      if (!a->t)
        return sl_fail(SL_EFORMAT, "onnx.load: %s: node %zu (%s) has a tensor attribute '%s' without a tensor", path,
                       i + 1, nd->op_type, a->name ? a->name : "?");
      int st = check_tensor(a->t, "tensor attribute", a->name ? a->name : "?", path);
      if (st) return st;
    }
    for (size_t k = 0; k < nd->n_input; k++) {
      const char *in = nd->input[k];
      if (!in || !*in) continue; /* an omitted optional input */
      bool found = false;
      for (size_t j = 0; j < g->n_input && !found; j++) found = g->input[j]->name && !strcmp(g->input[j]->name, in);
      for (size_t j = 0; j < g->n_initializer && !found; j++)
        found = g->initializer[j]->name && !strcmp(g->initializer[j]->name, in);
      for (size_t j = 0; j < i && !found; j++) found = find_name(g->node[j]->output, g->node[j]->n_output, in);
      if (!found)
        return sl_fail(SL_EFORMAT, "onnx.load: %s: node %zu (%s) reads '%s', which no graph input, initializer or "
                       "earlier node provides (a cycle, or nodes out of order)", path, i + 1, nd->op_type, in);
    }
  }
  return SL_OK;
}

sl_onnx_model *sl_onnx_load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return sl_fail(SL_EIO, "onnx.load: cannot open %s: %s", path, strerror(errno)), NULL;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return sl_fail(SL_EIO, "onnx.load: %s is not a regular file", path), NULL;
  }
  if ((uint64_t)st.st_size > SL_ONNX_MAX_BYTES) {
    fclose(f);
    return sl_fail(SL_EFORMAT, "onnx.load: %s is %lld bytes (at most %zu)", path, (long long)st.st_size,
                   SL_ONNX_MAX_BYTES), NULL;
  }
  size_t n = (size_t)st.st_size;
  uint8_t *buf = sl_malloc(n ? n : 1);
  if (!buf) {
    fclose(f);
    return NULL;
  }
  bool ok = fread(buf, 1, n, f) == n;
  fclose(f);
  if (!ok) {
    sl_free(buf);
    return sl_fail(SL_EIO, "onnx.load: cannot read %s", path), NULL;
  }
  Onnx__ModelProto *p = onnx__model_proto__unpack(&pb_allocator, n, buf);
  sl_free(buf);
  if (!p) return sl_fail(SL_EFORMAT, "onnx.load: %s is not an ONNX model (protobuf parse failed: truncated or not "
                         "a ModelProto)", path), NULL;
  sl_onnx_model *m = sl_calloc(1, sizeof *m);
  if (!m) {
    onnx__model_proto__free_unpacked(p, &pb_allocator);
    return NULL;
  }
  m->p = p;
  for (size_t i = 0; i < p->n_opset_import; i++)
    if (!p->opset_import[i]->domain || !*p->opset_import[i]->domain) m->opset = p->opset_import[i]->version;
  int stt = !p->graph ? sl_fail(SL_EFORMAT, "onnx.load: %s has no graph", path) : check_graph(p->graph, path);
  if (stt) {
    sl_onnx_model_free(m);
    return NULL;
  }
  return m;
}

void sl_onnx_model_free(sl_onnx_model *m) {
  if (!m) return;
  if (m->p) onnx__model_proto__free_unpacked(m->p, &pb_allocator);
  sl_free(m);
}

int64_t sl_onnx_opset(const sl_onnx_model *m) { return m->opset; }
int sl_onnx_node_count(const sl_onnx_model *m) { return (int)m->p->graph->n_node; }
static const Onnx__NodeProto *node(const sl_onnx_model *m, int i) { return m->p->graph->node[i]; }
const char *sl_onnx_node_op(const sl_onnx_model *m, int i) { return node(m, i)->op_type; }
int sl_onnx_node_ninputs(const sl_onnx_model *m, int i) { return (int)node(m, i)->n_input; }
int sl_onnx_node_noutputs(const sl_onnx_model *m, int i) { return (int)node(m, i)->n_output; }
const char *sl_onnx_node_input(const sl_onnx_model *m, int i, int k) { return node(m, i)->input[k]; }
const char *sl_onnx_node_output(const sl_onnx_model *m, int i, int k) { return node(m, i)->output[k]; }
int sl_onnx_node_nattrs(const sl_onnx_model *m, int i) { return (int)node(m, i)->n_attribute; }
static const Onnx__AttributeProto *attr(const sl_onnx_model *m, int i, int k) { return node(m, i)->attribute[k]; }
const char *sl_onnx_node_attr_name(const sl_onnx_model *m, int i, int k) {
  const char *s = attr(m, i, k)->name;
  return s ? s : "";
}

char sl_onnx_node_attr_kind(const sl_onnx_model *m, int i, int k) {
  const Onnx__AttributeProto *a = attr(m, i, k);
  switch (a->type) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return 'f';
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return 'i';
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return 'I';
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return 's';
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return 't';
  default: return '?';
  }
}

double sl_onnx_node_attr_number(const sl_onnx_model *m, int i, int k) {
  const Onnx__AttributeProto *a = attr(m, i, k);
  return a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT ? (double)a->f : (double)a->i;
}

int sl_onnx_node_attr_ints(const sl_onnx_model *m, int i, int k, const int64_t **v) {
  const Onnx__AttributeProto *a = attr(m, i, k);
  *v = a->ints;
  return (int)a->n_ints;
}

const char *sl_onnx_node_attr_string(const sl_onnx_model *m, int i, int k, size_t *len) {
  const Onnx__AttributeProto *a = attr(m, i, k);
  /* a bytes field: protobuf-c does not NUL-terminate it */
  *len = a->has_s && a->s.data ? a->s.len : 0;
  return *len ? (const char *)a->s.data : "";
}

static bool is_initializer(const Onnx__GraphProto *g, const char *name) {
  for (size_t j = 0; j < g->n_initializer; j++)
    if (g->initializer[j]->name && !strcmp(g->initializer[j]->name, name)) return true;
  return false;
}

int sl_onnx_graph_ninputs(const sl_onnx_model *m) {
  int n = 0;
  const Onnx__GraphProto *g = m->p->graph;
  for (size_t i = 0; i < g->n_input; i++) n += !is_initializer(g, g->input[i]->name ? g->input[i]->name : "");
  return n;
}

const char *sl_onnx_graph_input(const sl_onnx_model *m, int k) {
  const Onnx__GraphProto *g = m->p->graph;
  for (size_t i = 0; i < g->n_input; i++) {
    const char *nm = g->input[i]->name ? g->input[i]->name : "";
    if (!is_initializer(g, nm) && k-- == 0) return nm;
  }
  return NULL;
}

int sl_onnx_graph_noutputs(const sl_onnx_model *m) { return (int)m->p->graph->n_output; }
const char *sl_onnx_graph_output(const sl_onnx_model *m, int k) {
  const char *s = m->p->graph->output[k]->name;
  return s ? s : "";
}

bool sl_onnx_has_initializer(const sl_onnx_model *m, const char *name) { return is_initializer(m->p->graph, name); }

/* A checked tensor proto as a new float tensor (a 0-D one becomes [1]). */
static sl_tensor *tensor_of(const Onnx__TensorProto *t) {
  int64_t shape[SL_MAX_DIMS];
  int nd = (int)t->n_dims;
  for (int i = 0; i < nd; i++) shape[i] = t->dims[i];
  if (nd == 0) shape[nd++] = 1;
  sl_tensor *out = sl_tensor_empty(nd, shape);
  if (!out) return NULL;
  if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) { /* shapes, axes, indices: exact below 2^24 */
    for (int64_t i = 0; i < out->numel; i++) {
      int64_t v;
      if (t->has_raw_data) memcpy(&v, t->raw_data.data + i * 8, sizeof v); /* unaligned, little-endian */
      else v = t->int64_data[i];
      out->data[i] = (float)v;
    }
  } else if (t->has_raw_data) {
    if (t->raw_data.len) memcpy(out->data, t->raw_data.data, t->raw_data.len); /* empty: data may be NULL */
  } else if (t->n_float_data) {
    memcpy(out->data, t->float_data, t->n_float_data * sizeof(float));
  }
  return out;
}

static const Onnx__TensorProto *find_initializer(const sl_onnx_model *m, const char *name) {
  const Onnx__GraphProto *g = m->p->graph;
  for (size_t j = 0; j < g->n_initializer; j++)
    if (g->initializer[j]->name && !strcmp(g->initializer[j]->name, name)) return g->initializer[j];
  return NULL;
}

sl_tensor *sl_onnx_initializer(const sl_onnx_model *m, const char *name) {
  const Onnx__TensorProto *t = find_initializer(m, name);
  return t ? tensor_of(t) : NULL;
}

bool sl_onnx_initializer_info(const sl_onnx_model *m, const char *name, int *ndim, bool *int64) {
  const Onnx__TensorProto *t = find_initializer(m, name);
  if (!t) return false;
  *ndim = (int)t->n_dims;
  *int64 = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  return true;
}

sl_tensor *sl_onnx_node_attr_tensor(const sl_onnx_model *m, int i, int k, int *ndim, bool *int64) {
  const Onnx__TensorProto *t = attr(m, i, k)->t;
  *ndim = (int)t->n_dims;
  *int64 = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  return tensor_of(t);
}
