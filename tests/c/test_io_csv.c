/* Numeric CSV reader: header detection, label columns, line endings, and
 * errors that name the line and column. */
#include <zlib.h>

#include "test_io_util.h"

typedef struct csv_fixture {
  char dir[64];
  char path[128];
} csv_fixture;

static void csv_file(csv_fixture *f, const char *text) {
  if (!f->dir[0]) io_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/t.csv", f->dir);
  io_write(f->path, text, strlen(text));
}

static int csv_read(csv_fixture *f, const char *text, const sl_csv_options *o, sl_tensor **x,
                    sl_tensor **y) {
  csv_file(f, text);
  return sl_csv_read(f->path, o, x, y, NULL, NULL);
}

Test(csv, header_label_by_name_crlf_quotes_and_trailing_blank_line) {
  csv_fixture f = {{0}, {0}};
  csv_file(&f, "\"a\",\"b \"\"x\"\"\",label\r\n1,2,0\r\n3.5,-4e2,1\r\n\r\n");
  sl_csv_options o = sl_csv_defaults();
  o.label = "label";
  sl_tensor *x, *y;
  char **names;
  int64_t nc;
  cr_assert_eq(sl_csv_read(f.path, &o, &x, &y, &names, &nc), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->ndim, 2);
  cr_assert_eq(x->shape[0], 2);
  cr_assert_eq(x->shape[1], 2);
  cr_assert_eq(x->data[0], 1.0f);
  cr_assert_eq(x->data[1], 2.0f);
  cr_assert_eq(x->data[2], 3.5f);
  cr_assert_eq(x->data[3], -400.0f);
  cr_assert_eq(y->shape[0], 2);
  cr_assert_eq(y->data[0], 0.0f);
  cr_assert_eq(y->data[1], 1.0f);
  cr_assert_eq(nc, 2);
  cr_assert_str_eq(names[0], "a");
  cr_assert_str_eq(names[1], "b \"x\"");
  sl_csv_free_names(names, nc);
  sl_tensor_release(x);
  sl_tensor_release(y);
  io_rmdir(f.dir);
  IO_LEAK_CHECK();
}

Test(csv, numeric_first_line_is_data_and_label_index_selects_a_column) {
  csv_fixture f = {{0}, {0}};
  sl_csv_options o = sl_csv_defaults();
  o.label_index = 0;
  sl_tensor *x, *y;
  char **names = (char **)1;
  cr_assert_eq(csv_read(&f, "7, 1.25 ,2\n8,3,\"4\"", &o, &x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->shape[0], 2); /* no header, no final newline */
  cr_assert_eq(x->shape[1], 2);
  cr_assert_eq(x->data[0], 1.25f);
  cr_assert_eq(x->data[3], 4.0f);
  cr_assert_eq(y->data[0], 7.0f);
  cr_assert_eq(y->data[1], 8.0f);
  sl_tensor_release(x);
  sl_tensor_release(y);
  /* no label: y comes back NULL; names NULL without a header */
  cr_assert_eq(sl_csv_read(f.path, NULL, &x, &y, &names, NULL), SL_OK);
  cr_assert_eq(x->shape[1], 3);
  cr_assert_null(y);
  cr_assert_null(names);
  sl_tensor_release(x);
  io_rmdir(f.dir);
  IO_LEAK_CHECK();
}

Test(csv, other_delimiters_and_gzip_input) {
  csv_fixture f = {{0}, {0}};
  sl_csv_options o = sl_csv_defaults();
  o.delimiter = ';';
  sl_tensor *x, *y;
  cr_assert_eq(csv_read(&f, "p;q\n1;2\n", &o, &x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->shape[0], 1);
  cr_assert_eq(x->data[1], 2.0f);
  sl_tensor_release(x);
  o.delimiter = '\t';
  cr_assert_eq(csv_read(&f, "1\t-2\n3\t4\n", &o, &x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->data[1], -2.0f);
  sl_tensor_release(x);

  char gzp[160];
  snprintf(gzp, sizeof gzp, "%s/t.csv.gz", f.dir);
  gzFile g = gzopen(gzp, "wb");
  gzputs(g, "u,v\n5,6\n");
  gzclose(g);
  cr_assert_eq(sl_csv_read(gzp, NULL, &x, NULL, NULL, NULL), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->data[0], 5.0f);
  cr_assert_eq(x->data[1], 6.0f);
  sl_tensor_release(x);
  io_rmdir(f.dir);
  IO_LEAK_CHECK();
}

Test(csv, bad_cell_names_line_column_and_header) {
  csv_fixture f = {{0}, {0}};
  sl_tensor *x, *y;
  cr_assert_eq(csv_read(&f, "a,b\n1,2\n3,x7\n", NULL, &x, &y), SL_EFORMAT);
  cr_assert_null(x);
  IO_ASSERT_ERR(f.path);
  IO_ASSERT_ERR(":3: column 2 (\"b\"): cannot parse 'x7' as a number");
  cr_assert_eq(csv_read(&f, "1,2,3\n4,,6\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR(":2: column 2: empty cell");
  cr_assert_eq(csv_read(&f, "1,2\r\n3,4 5\r\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR(":2: column 2: cannot parse '4 5' as a number");
  /* header forced off: a text first line is a bad cell on line 1 */
  sl_csv_options o = sl_csv_defaults();
  o.header = 0;
  cr_assert_eq(csv_read(&f, "a,b\n1,2\n", &o, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR(":1: column 1: cannot parse 'a' as a number");
  io_rmdir(f.dir);
  IO_LEAK_CHECK();
}

Test(csv, ragged_rows_blank_lines_and_quotes_are_errors) {
  csv_fixture f = {{0}, {0}};
  sl_tensor *x, *y;
  cr_assert_eq(csv_read(&f, "1,2,3\n4,5\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR(":2: 2 columns, expected 3 (as in line 1)");
  cr_assert_eq(csv_read(&f, "1,2\n3,4,5\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR(":2: 3 columns, expected 2");
  cr_assert_eq(csv_read(&f, "1,2\n\n3,4\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR(":2: empty line");
  cr_assert_eq(csv_read(&f, "\"a,b\n1,2\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR(":1: column 1: unterminated quoted field");
  io_rmdir(f.dir);
  IO_LEAK_CHECK();
}

Test(csv, empty_and_header_only_files_are_errors) {
  csv_fixture f = {{0}, {0}};
  sl_tensor *x, *y;
  cr_assert_eq(csv_read(&f, "", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR("empty file");
  cr_assert_eq(csv_read(&f, "\n  \r\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR("empty file");
  cr_assert_eq(csv_read(&f, "a,b\n", NULL, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR("no data rows");
  csv_file(&f, "1,2\n3,4\n");
  io_write(f.path, "1,2\n3,\0\n", 7);
  cr_assert_eq(sl_csv_read(f.path, NULL, &x, &y, NULL, NULL), SL_EFORMAT);
  IO_ASSERT_ERR(":2: NUL byte: not a text file");
  cr_assert_eq(sl_csv_read("/nonexistent.csv", NULL, &x, &y, NULL, NULL), SL_EIO);
  IO_ASSERT_ERR("cannot open /nonexistent.csv");
  io_rmdir(f.dir);
  IO_LEAK_CHECK();
}

Test(csv, unknown_label_column_is_reported) {
  csv_fixture f = {{0}, {0}};
  sl_csv_options o = sl_csv_defaults();
  sl_tensor *x, *y;
  o.label = "target";
  cr_assert_eq(csv_read(&f, "a,b\n1,2\n", &o, &x, &y), SL_EINVAL);
  IO_ASSERT_ERR("no column named \"target\"");
  cr_assert_eq(csv_read(&f, "1,2\n", &o, &x, &y), SL_EINVAL);
  IO_ASSERT_ERR("given by name but the file has no header");
  o.label = NULL;
  o.label_index = 2;
  cr_assert_eq(csv_read(&f, "1,2\n", &o, &x, &y), SL_EINVAL);
  IO_ASSERT_ERR("label column index 2 out of range (the file has 2 columns)");
  o.label_index = 0;
  cr_assert_eq(csv_read(&f, "1\n2\n", &o, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR("no feature columns");
  io_rmdir(f.dir);
  IO_LEAK_CHECK();
}
