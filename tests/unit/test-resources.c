/* Unit tests: lib/resources.c (PBS sizes, durations, select, -l lists). */
#include <stdlib.h>

#include "lib/resources.h"
#include "unit.h"

#define KV(k, v) {(char *)(k), (char *)(v)}

static void
test_parse_size(void)
{
    int64_t v = -1;

    CHECK_INT(dv_parse_size("1024", &v), 0);
    CHECK_INT(v, 1024);
    CHECK_INT(dv_parse_size("1gb", &v), 0);
    CHECK_INT(v, 1073741824LL);
    CHECK_INT(dv_parse_size("2GB", &v), 0);
    CHECK_INT(v, 2147483648LL);
    CHECK_INT(dv_parse_size("512m", &v), 0);
    CHECK_INT(v, 512LL << 20);
    CHECK_INT(dv_parse_size("3kw", &v), 0);
    CHECK_INT(v, 3 * 1024 * 8);
    CHECK_INT(dv_parse_size("1tb", &v), 0);
    CHECK_INT(v, 1LL << 40);
    CHECK_INT(dv_parse_size("", &v), -1);
    CHECK_INT(dv_parse_size("gb", &v), -1);
    CHECK_INT(dv_parse_size("1.5gb", &v), -1);
    CHECK_INT(dv_parse_size("-1", &v), -1);
    CHECK_INT(dv_parse_size("1gbx", &v), -1);
    CHECK_INT(dv_parse_size("99999999999999999999", &v), -1);
    CHECK_INT(dv_parse_size("9000000pb", &v), -1);
}

static void
test_format_size(void)
{
    char buf[32];

    dv_format_size(1073741824LL, buf, sizeof(buf));
    CHECK_STR(buf, "1gb");
    dv_format_size(1024, buf, sizeof(buf));
    CHECK_STR(buf, "1kb");
    dv_format_size(1536, buf, sizeof(buf));
    CHECK_STR(buf, "1536b");
    dv_format_size(3072, buf, sizeof(buf));
    CHECK_STR(buf, "3kb");
    dv_format_size(0, buf, sizeof(buf));
    CHECK_STR(buf, "0b");
}

static void
test_walltime(void)
{
    int64_t s = -1;
    char buf[32];

    CHECK_INT(dv_parse_walltime("90", &s), 0);
    CHECK_INT(s, 90);
    CHECK_INT(dv_parse_walltime("1:30", &s), 0);
    CHECK_INT(s, 90);
    CHECK_INT(dv_parse_walltime("01:00:00", &s), 0);
    CHECK_INT(s, 3600);
    CHECK_INT(dv_parse_walltime("100:00:05", &s), 0);
    CHECK_INT(s, 360005);
    CHECK_INT(dv_parse_walltime("10.5", &s), 0);
    CHECK_INT(s, 10);
    CHECK_INT(dv_parse_walltime("abc", &s), -1);
    CHECK_INT(dv_parse_walltime("1:2:3:4", &s), -1);
    CHECK_INT(dv_parse_walltime("1:60", &s), -1);
    CHECK_INT(dv_parse_walltime("", &s), -1);
    CHECK_INT(dv_parse_walltime("1:", &s), -1);
    CHECK_INT(dv_parse_walltime("-5", &s), -1);
    dv_format_hms(90, buf, sizeof(buf));
    CHECK_STR(buf, "00:01:30");
    dv_format_hms(360005, buf, sizeof(buf));
    CHECK_STR(buf, "100:00:05");
}

static void
test_select(void)
{
    struct dv_resreq rr;
    struct dv_err err;
    struct dv_buf b;

    dv_buf_init(&b);
    CHECK_INT(dv_select_parse("2:ncpus=4:mem=1gb+1:ncpus=1", &rr, &err), 0);
    CHECK_INT(rr.nkinds, 2);
    CHECK_INT(rr.kinds[0].count, 2);
    CHECK_INT(rr.kinds[0].ncpus, 4);
    CHECK_INT(rr.kinds[0].mem, 1LL << 30);
    CHECK_INT(rr.ncpus, 9);
    CHECK_INT(rr.nodect, 3);
    CHECK_INT(rr.mem, 2LL << 30);
    dv_select_format(&rr, &b);
    CHECK_STR(dv_buf_str(&b), "2:ncpus=4:mem=1gb+1:ncpus=1");
    CHECK_INT(dv_select_parse("ncpus=2", &rr, &err), 0);
    CHECK_INT(rr.kinds[0].count, 1);
    CHECK_INT(rr.kinds[0].ncpus, 2);
    CHECK_INT(dv_select_parse("3", &rr, &err), 0);
    CHECK_INT(rr.nodect, 3);
    CHECK_INT(rr.ncpus, 3);
    CHECK_INT(dv_select_parse("1:foo=3", &rr, &err), -1);
    CHECK_STR(err.msg, "Unknown resource Resource_List.foo");
    CHECK_INT(dv_select_parse("1:ncpus=x", &rr, &err), -1);
    CHECK_STR(err.msg, "Illegal attribute or resource value Resource_List.select");
    CHECK_INT(dv_select_parse("1:ncpus=1+", &rr, &err), -1);
    CHECK_INT(dv_select_parse("+1:ncpus=1", &rr, &err), -1);
    CHECK_INT(dv_select_parse("0:ncpus=1", &rr, &err), -1);
    CHECK_INT(dv_select_parse("", &rr, &err), -1);
    /* sums must not overflow: per-chunk memory is capped */
    CHECK_INT(dv_select_parse("1:ncpus=1:mem=4611686018427387904b+"
                              "3:ncpus=0:mem=4611686018427387904b",
                              &rr, &err),
              -1);
    CHECK_INT(dv_select_parse("4096:ncpus=1:mem=1pb", &rr, &err), 0);
    CHECK_INT(rr.mem, 4096LL << 50);
    dv_buf_cleanup(&b);
}

static void
test_from_list(void)
{
    struct dv_resreq rr;
    struct dv_err err;
    struct dv_kv l1[] = {KV("ncpus", "2"), KV("mem", "1gb"), KV("walltime", "1:00")};
    struct dv_kv l2[] = {KV("select", "2:ncpus=1"), KV("place", "scatter:excl")};
    struct dv_kv l3[] = {KV("select", "1:ncpus=1"), KV("ncpus", "2")};
    struct dv_kv l4[] = {KV("walltime", "abc")};
    struct dv_kv l5[] = {KV("foo", "1")};

    CHECK_INT(dv_resreq_from_list(l1, 3, &rr, &err), 0);
    CHECK_INT(rr.nkinds, 1);
    CHECK_INT(rr.ncpus, 2);
    CHECK_INT(rr.mem, 1LL << 30);
    CHECK_INT(rr.walltime, 60);
    CHECK_INT(rr.place, DV_PLACE_PACK);
    CHECK_INT(dv_resreq_from_list(l2, 2, &rr, &err), 0);
    CHECK_INT(rr.nodect, 2);
    CHECK_INT(rr.place, DV_PLACE_SCATTER);
    CHECK_INT(rr.excl, 1);
    CHECK_INT(dv_resreq_from_list(l3, 2, &rr, &err), -1);
    CHECK_INT(dv_resreq_from_list(l4, 1, &rr, &err), -1);
    CHECK_STR(err.msg,
              "Illegal attribute or resource value Resource_List.walltime");
    CHECK_STR(err.code, "bad_resource_value");
    CHECK_INT(dv_resreq_from_list(l5, 1, &rr, &err), -1);
    CHECK_STR(err.msg, "Unknown resource Resource_List.foo");
    CHECK_STR(err.code, "unknown_resource");
    CHECK_INT(dv_resreq_from_list(NULL, 0, &rr, &err), 0);
    CHECK_INT(rr.ncpus, 1);
    CHECK_INT(rr.nodect, 1);
}

/* Custom resources: what is built in, types, flags and values. */
static void
test_custom(void)
{
    char canon[64];

    CHECK(dv_resource_is_builtin("walltime"));
    CHECK(dv_resource_is_builtin("select"));
    CHECK(dv_resource_is_builtin("ncpus"));
    CHECK(dv_resource_is_builtin("mem"));
    CHECK(!dv_resource_is_builtin("software"));
    CHECK(!dv_resource_is_builtin("filesystems"));
    CHECK(dv_resource_type_valid("string_array"));
    CHECK(!dv_resource_type_valid("int"));
    CHECK(!dv_resource_type_valid(NULL));
    CHECK(dv_resource_flags_valid(""));
    CHECK(dv_resource_flags_valid("nh"));
    CHECK(!dv_resource_flags_valid("hh"));
    CHECK(!dv_resource_flags_valid("x"));
    CHECK_INT(dv_resource_value_check("string", "gromacs", canon,
                                      sizeof(canon)),
              0);
    CHECK_STR(canon, "gromacs");
    CHECK_INT(dv_resource_value_check("string", "", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("string", "a\nb", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("long", "-42", NULL, 0), 0);
    CHECK_INT(dv_resource_value_check("long", "4x", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("float", "1.5e3", NULL, 0), 0);
    CHECK_INT(dv_resource_value_check("float", "1.5.3", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("size", "2GB", canon, sizeof(canon)),
              0);
    CHECK_STR(canon, "2gb");
    CHECK_INT(dv_resource_value_check("size", "lots", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("boolean", "y", canon, sizeof(canon)),
              0);
    CHECK_STR(canon, "True");
    CHECK_INT(dv_resource_value_check("boolean", "0", canon, sizeof(canon)),
              0);
    CHECK_STR(canon, "False");
    CHECK_INT(dv_resource_value_check("boolean", "maybe", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("string_array", "a:b,c", canon,
                                      sizeof(canon)),
              0);
    CHECK_STR(canon, "a:b,c");
    CHECK_INT(dv_resource_value_check("string_array", "a,,b", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("string_array", "a,", NULL, 0), -1);
    CHECK_INT(dv_resource_value_check("nosuchtype", "a", NULL, 0), -1);
}

static void
test_nodes(void)
{
    struct dv_resreq rr;
    struct dv_err err;
    struct dv_buf b;
    struct dv_kv l1[] = {KV("nodes", "2:ppn=16")};
    struct dv_kv l2[] = {KV("nodes", "3"), KV("walltime", "10")};
    struct dv_kv l3[] = {KV("nodes", "2:ppn=4+1:ppn=2"), KV("place", "pack")};
    struct dv_kv l4[] = {KV("nodes", "2"), KV("select", "1:ncpus=1")};
    struct dv_kv l5[] = {KV("nodes", "2"), KV("ncpus", "4")};

    dv_buf_init(&b);
    CHECK_INT(dv_resreq_from_list(l1, 1, &rr, &err), 0);
    CHECK_INT(rr.place, DV_PLACE_SCATTER);
    CHECK_INT(rr.nodect, 2);
    CHECK_INT(rr.ncpus, 32);
    dv_select_format(&rr, &b);
    CHECK_STR(dv_buf_str(&b), "2:ncpus=16:mpiprocs=16");
    CHECK_INT(dv_resreq_from_list(l2, 2, &rr, &err), 0);
    dv_buf_reset(&b);
    dv_select_format(&rr, &b);
    CHECK_STR(dv_buf_str(&b), "3:ncpus=1:mpiprocs=1");
    CHECK_INT(rr.place, DV_PLACE_SCATTER);
    CHECK_INT(dv_resreq_from_list(l3, 2, &rr, &err), 0);
    dv_buf_reset(&b);
    dv_select_format(&rr, &b);
    CHECK_STR(dv_buf_str(&b), "2:ncpus=4:mpiprocs=4+1:ncpus=2:mpiprocs=2");
    CHECK_INT(rr.place, DV_PLACE_PACK);
    CHECK_INT(rr.ncpus, 10);
    CHECK_INT(dv_resreq_from_list(l4, 2, &rr, &err), -1);
    CHECK_INT(dv_resreq_from_list(l5, 2, &rr, &err), -1);
    CHECK_INT(dv_nodes_parse("2:ppn=0", &rr, &err), -1);
    CHECK_STR(err.msg,
              "Illegal attribute or resource value Resource_List.nodes");
    CHECK_INT(dv_nodes_parse("2:ppn=", &rr, &err), -1);
    CHECK_INT(dv_nodes_parse("2+", &rr, &err), -1);
    CHECK_INT(dv_nodes_parse("", &rr, &err), -1);
    CHECK_INT(dv_nodes_parse("2:gpu", &rr, &err), -1);
    /* host names: one chunk on each */
    CHECK_INT(dv_nodes_parse("n1+n2.example.com:ppn=2", &rr, &err), 0);
    dv_buf_reset(&b);
    dv_select_format(&rr, &b);
    CHECK_STR(dv_buf_str(&b), "1:ncpus=1:mpiprocs=1:host=n1+"
                              "1:ncpus=2:mpiprocs=2:host=n2.example.com");
    CHECK_INT(dv_nodes_parse("-bad", &rr, &err), -1);
    CHECK_INT(dv_select_parse("1:ncpus=2:host=n1", &rr, &err), 0);
    CHECK_STR(rr.kinds[0].host, "n1");
    CHECK_INT(dv_select_parse("1:host=a/b", &rr, &err), -1);
    CHECK_INT(dv_nodes_parse("n1:host=n2", &rr, &err), -1);
    /* ompthreads is a chunk resource too */
    CHECK_INT(dv_select_parse("2:ncpus=4:mpiprocs=2:ompthreads=2", &rr, &err),
              0);
    CHECK_INT(rr.kinds[0].ompthreads, 2);
    CHECK_INT(rr.kinds[0].mpiprocs, 2);
    dv_buf_reset(&b);
    dv_select_format(&rr, &b);
    CHECK_STR(dv_buf_str(&b), "2:ncpus=4:mpiprocs=2:ompthreads=2");
    dv_buf_cleanup(&b);
}

int
main(void)
{
    RUN(test_parse_size);
    RUN(test_format_size);
    RUN(test_walltime);
    RUN(test_select);
    RUN(test_from_list);
    RUN(test_custom);
    RUN(test_nodes);
    return unit_done();
}
