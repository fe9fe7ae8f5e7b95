/* test_stream.c — unit tests of the streaming safetensors writer
 * (engine/safetensors.h): a file written row by row from strided sources
 * reads back exactly through ssm_safetensors_open (names, shapes, order,
 * metadata), a put out of header order or past a tensor's end is refused,
 * an incomplete file is not committed, and abort leaves nothing behind. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "engine/safetensors.h"
#include "tests/tmpdir.h"

TestSuite(stream, .init = tmpdir_make, .fini = tmpdir_remove);

/* Files in tmpdir, temporary files included */
static int dir_entries(void)
{
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.' || strncmp(e->d_name, ".ssmlab-tmp", 11) == 0;
    closedir(d);
    return n;
}

/* a (3, 2) tensor taken from the first two columns of a (3, 5) block, an
 * empty one, and a (2, 2, 2) one written in two puts */
static const ssm_st_spec specs[] = {
    {"strided", 2, {3, 2}},
    {"empty", 1, {0}},
    {"cube", 3, {2, 2, 2}},
};

static void begin(ssm_safetensors_stream *w, const char *name)
{
    ssm_st_meta meta[] = {{"ssmlab.format", "test"}, {"note", "a \"quoted\" value"}};
    cr_assert_eq(ssm_safetensors_stream_begin(w, tmpdir_path(name), specs, 3, meta, 2), SSM_OK, "%s",
                 ssm_last_error());
}

Test(stream, round_trip)
{
    float block[15], cube[8];
    for (int i = 0; i < 15; i++) block[i] = (float)i + 0.5f;
    for (int i = 0; i < 8; i++) cube[i] = -1.0f - (float)i;
    ssm_safetensors_stream w;
    begin(&w, "a.safetensors");
    for (int r = 0; r < 3; r++)   /* row by row, as the dump writes z */
        cr_assert_eq(ssm_safetensors_stream_put(&w, 0, 1, 2, block + 5 * r, 2), SSM_OK);
    cr_assert_eq(ssm_safetensors_stream_put(&w, 2, 1, 4, cube, 4), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_safetensors_stream_put(&w, 2, 2, 2, cube + 4, 2), SSM_OK);
    cr_assert_eq(ssm_safetensors_stream_commit(&w), SSM_OK, "%s", ssm_last_error());

    ssm_safetensors st;
    cr_assert_eq(ssm_safetensors_open(&st, tmpdir_path("a.safetensors")), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(st.n_tensors, 3);
    cr_assert_str_eq(ssm_safetensors_metadata(&st, "ssmlab.format"), "test");
    cr_assert_str_eq(ssm_safetensors_metadata(&st, "note"), "a \"quoted\" value");
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(st.tensors[i].name, specs[i].name);
        cr_assert_eq(st.tensors[i].ndim, specs[i].ndim);
        for (int d = 0; d < specs[i].ndim; d++) cr_assert_eq(st.tensors[i].shape[d], specs[i].shape[d]);
    }
    float got[8];
    cr_assert_eq(ssm_safetensors_read_f32(&st, &st.tensors[0], got), SSM_OK);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 2; c++) cr_assert_eq(got[r * 2 + c], block[5 * r + c]);
    cr_assert_eq(ssm_safetensors_read_f32(&st, ssm_safetensors_find(&st, "cube"), got), SSM_OK);
    cr_assert_eq(memcmp(got, cube, sizeof cube), 0);
    cr_assert_eq(st.tensors[1].numel, 0);
    ssm_safetensors_close(&st);
    cr_assert_eq(dir_entries(), 1, "only the committed file is left");
}

Test(stream, out_of_order_put_refused)
{
    float v[8] = {0};
    ssm_safetensors_stream w;
    begin(&w, "b.safetensors");
    /* cube before strided is complete */
    cr_assert_eq(ssm_safetensors_stream_put(&w, 2, 1, 8, v, 8), SSM_ERR_SOFTWARE);
    cr_assert(strstr(ssm_last_error(), "out of order"), "%s", ssm_last_error());
    /* the failure sticks: a correct put now fails too, commit aborts */
    cr_assert_eq(ssm_safetensors_stream_put(&w, 0, 3, 2, v, 2), SSM_ERR_SOFTWARE);
    cr_assert_eq(ssm_safetensors_stream_commit(&w), SSM_ERR_SOFTWARE);
    cr_assert_eq(access(tmpdir_path("b.safetensors"), F_OK), -1);
    cr_assert_eq(dir_entries(), 0);
}

/* After `first` complete tensors, a put of rows x cols into tensor index
 * is refused with a message holding `what`; abort then leaves no file. */
static void expect_refused(int first, int index, size_t rows, size_t cols, const char *what)
{
    float v[8] = {0};
    ssm_safetensors_stream w;
    begin(&w, "r.safetensors");
    if (first) cr_assert_eq(ssm_safetensors_stream_put(&w, 0, 3, 2, v, 2), SSM_OK);
    cr_assert_eq(ssm_safetensors_stream_put(&w, index, rows, cols, v, cols), SSM_ERR_SOFTWARE);
    cr_assert(strstr(ssm_last_error(), what), "%s", ssm_last_error());
    ssm_safetensors_stream_abort(&w);
    cr_assert_eq(dir_entries(), 0);
}

Test(stream, going_back_refused) { expect_refused(1, 0, 1, 1, "out of order"); }

Test(stream, overflow_refused) { expect_refused(0, 0, 4, 2, "'strided': 4 x 2 values"); }

Test(stream, incomplete_not_committed)
{
    float v[8] = {0};
    ssm_safetensors_stream w;
    begin(&w, "e.safetensors");
    cr_assert_eq(ssm_safetensors_stream_put(&w, 0, 3, 2, v, 2), SSM_OK);
    cr_assert_eq(ssm_safetensors_stream_put(&w, 2, 1, 7, v, 7), SSM_OK);
    cr_assert_eq(ssm_safetensors_stream_commit(&w), SSM_ERR_SOFTWARE);
    cr_assert(strstr(ssm_last_error(), "'cube' is incomplete"), "%s", ssm_last_error());
    cr_assert_eq(dir_entries(), 0);
}

Test(stream, abort_leaves_no_file)
{
    float v[8] = {0};
    ssm_safetensors_stream w;
    begin(&w, "f.safetensors");
    cr_assert_eq(dir_entries(), 1, "the temporary file exists while writing");
    cr_assert_eq(ssm_safetensors_stream_put(&w, 0, 3, 2, v, 2), SSM_OK);
    ssm_safetensors_stream_abort(&w);
    cr_assert_eq(dir_entries(), 0);
    cr_assert_eq(access(tmpdir_path("f.safetensors"), F_OK), -1);
}

Test(stream, bad_specs_leave_no_file)
{
    ssm_st_spec twice[] = {{"x", 1, {2}}, {"x", 1, {2}}};
    ssm_safetensors_stream w;
    cr_assert_eq(ssm_safetensors_stream_begin(&w, tmpdir_path("g.safetensors"), twice, 2, NULL, 0),
                 SSM_ERR_SOFTWARE);
    cr_assert(strstr(ssm_last_error(), "used twice"), "%s", ssm_last_error());
    cr_assert_eq(ssm_safetensors_stream_begin(&w, "/nonexistent-dir/h.safetensors", specs, 3, NULL, 0),
                 SSM_ERR_CANTCREAT);
    cr_assert_eq(dir_entries(), 0);
}
