/* Unit tests: noded/topology.c (hwloc fingerprint, PUs of granted cores). */
#include <stdio.h>
#include <stdlib.h>

#include "noded/noded.h"
#include "unit.h"

static struct topology *
load_xml(const char *file)
{
    const char *shared = getenv("DROVER_SHARED");
    char path[1024];
    struct dv_err err;
    struct topology *t;

    snprintf(path, sizeof(path), "%s/hwloc-xml/%s",
             shared != NULL && *shared != '\0' ? shared : "../shared", file);
    t = topology_load(path, NULL, 0, &err);
    if (t == NULL) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
    }
    return t;
}

static void
test_synthetic(void)
{
    struct dv_err err;
    struct topology *t =
        topology_load(NULL, "pack:1 numa:2 core:4 pu:2", 0, &err);
    char *s;

    CHECK(t != NULL);
    if (t == NULL) {
        return;
    }
    CHECK_INT(t->is_thissystem, 0);
    CHECK_INT(t->npackages, 1);
    CHECK_INT(t->nnuma, 2);
    CHECK_INT(t->ncores, 8);
    CHECK_INT(t->npus, 16);
    CHECK_INT(t->ngpus, 0);
    CHECK_STR(t->cores[0].pus, "0-1");
    CHECK_STR(t->cores[5].pus, "10-11");
    CHECK_INT(t->cores[3].numa, 0);
    CHECK_INT(t->cores[4].numa, 1);
    CHECK_INT(t->cores[7].package, 0);
    CHECK_STR(t->numa[0].cores, "0-3");
    CHECK_STR(t->numa[1].cores, "4-7");
    CHECK_STR(t->packages[0].cores, "0-7");

    s = topology_cores_pus_text(t, "0-1,4", &err);
    CHECK_STR(s, "0-3,8-9");
    free(s);
    s = topology_cores_pus_text(t, "", &err);
    CHECK_STR(s, "");
    free(s);
    CHECK(topology_cores_pus_text(t, "7-8", &err) == NULL);
    CHECK_STR(err.code, "bad_cpuset");
    CHECK(topology_cores_pus_text(t, "x", &err) == NULL);
    CHECK(topology_cores_pus_text(t, "3-", &err) == NULL);
    topology_free(t);

    /* --memory replaces what the topology says. */
    t = topology_load(NULL, "pack:2 core:2 pu:1", 4LL << 30, &err);
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK_INT(t->npackages, 2);
        CHECK_INT(t->ncores, 4);
        CHECK_INT(t->memory, 4LL << 30);
        CHECK_INT(t->cores[2].package, 1);
        topology_free(t);
    }
    CHECK(topology_load(NULL, "nonsense:3", 0, &err) == NULL);
    CHECK(topology_load("/nonexistent.xml", NULL, 0, &err) == NULL);
    CHECK_STR(err.code, "invalid_config");
    CHECK(topology_load("/x.xml", "pu:2", 0, &err) == NULL);
}

static void
test_host(void)
{
    struct dv_err err;
    struct topology *t = topology_load(NULL, NULL, 0, &err);

    CHECK(t != NULL);
    if (t == NULL) {
        return;
    }
    CHECK_INT(t->is_thissystem, 1);
    CHECK(t->ncores >= 1);
    CHECK(t->npus >= t->ncores);
    CHECK(t->memory > 0);
    topology_free(t);
}

static void
test_xml_dgx2(void)
{
    struct topology *t = load_xml("nvidiaDGX2.xml");

    CHECK(t != NULL);
    if (t == NULL) {
        return;
    }
    CHECK_INT(t->npackages, 2);
    CHECK_INT(t->nnuma, 2);
    CHECK_INT(t->ncores, 4);
    CHECK_INT(t->npus, 4);
    CHECK_INT(t->ngpus, 16);
    CHECK_INT(t->memory, t->numa[0].memory + t->numa[1].memory);
    CHECK(t->memory > 1500ULL << 30);
    CHECK_STR(t->gpus[0].name, "nvml0");
    CHECK_STR(t->gpus[0].pci, "0000:34:00.0");
    CHECK_INT(t->gpus[0].package, 0);
    CHECK_INT(t->gpus[15].package, 1);
    CHECK_INT(t->gpus[15].numa, 1);
    CHECK(t->cpu_model != NULL);
    topology_free(t);
}

static void
test_xml_gpus(void)
{
    struct topology *t;

    /* cuda, opencl and nvml devices of one GPU count once. */
    t = load_xml("power8gpudistances.xml");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK_INT(t->ngpus, 4);
        CHECK_INT(t->ncores, 8);
        CHECK_INT(t->npus, 16);
        CHECK_STR(t->cores[1].pus, "8-9");
        topology_free(t);
    }
    /* No GPU OS devices: NVIDIA display-class PCI devices are counted. */
    t = load_xml("24em64t-2n6c2t-pci.xml");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK_INT(t->ngpus, 3);
        CHECK(t->gpus[0].pci != NULL);
        topology_free(t);
    }
    /* A Matrox VGA is no GPU. */
    t = load_xml("192em64t-24n8c2t.xml");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK_INT(t->ngpus, 0);
        CHECK_INT(t->nnuma, 24);
        CHECK_INT(t->ncores, 192);
        topology_free(t);
    }
    /* cuda0 + card0 on one device, opencl0d1 on another. */
    t = load_xml("32em64t-2n8c2t-pci-normalio.xml");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK_INT(t->ngpus, 2);
        CHECK_STR(t->gpus[0].name, "cuda0");
        topology_free(t);
    }
}

static void
test_xml_numa(void)
{
    struct topology *t;

    /* NUMA OS indexes interleaved across packages. */
    t = load_xml("memorysidecaches.xml");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK_INT(t->nnuma, 4);
        CHECK_INT(t->npackages, 2);
        CHECK_INT(t->ncores, 40);
        CHECK_INT(t->numa[1].os_index, 2);
        CHECK_INT(t->cores[0].numa, 0);
        CHECK_INT(t->cores[39].numa, 3);
        CHECK_INT(t->cores[39].package, 1);
        topology_free(t);
    }
    /* Four PUs per core, no memory recorded. */
    t = load_xml("Intel-KnightsLanding-XeonPhi-7210.xml");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK_INT(t->ncores, 64);
        CHECK_INT(t->npus, 256);
        CHECK_STR(t->cores[0].pus, "0,64,128,192");
        topology_free(t);
    }
    t = load_xml("64amd64-4p2n4ca2co.xml");
    CHECK(t != NULL);
    if (t != NULL) {
        char *s;
        struct dv_err err;

        CHECK_INT(t->nnuma, 8);
        CHECK_INT(t->npackages, 4);
        s = topology_cores_pus_text(t, "0,63", &err);
        CHECK(s != NULL && s[0] != '\0');
        free(s);
        topology_free(t);
    }
}

static void
test_fingerprint_json(void)
{
    struct dv_err err;
    struct topology *t =
        topology_load(NULL, "pack:1 numa:2 core:4 pu:2", 8LL << 30, &err);
    json_t *j, *res, *topo, *attrs, *core;

    CHECK(t != NULL);
    if (t == NULL) {
        return;
    }
    j = topology_fingerprint_json(t, "node1.example");
    res = json_object_get(j, "resources");
    topo = json_object_get(j, "topology");
    attrs = json_object_get(j, "attributes");
    CHECK_INT(json_integer_value(json_object_get(res, "cores")), 8);
    CHECK_INT(json_integer_value(json_object_get(res, "pus")), 16);
    CHECK_INT(json_integer_value(json_object_get(res, "memory")), 8LL << 30);
    CHECK_INT(json_integer_value(json_object_get(res, "numa_nodes")), 2);
    CHECK_INT(json_integer_value(json_object_get(res, "packages")), 1);
    CHECK_INT(json_integer_value(json_object_get(res, "gpus")), 0);
    CHECK_INT(json_array_size(json_object_get(topo, "cores")), 8);
    CHECK_INT(json_array_size(json_object_get(topo, "numa")), 2);
    core = json_array_get(json_object_get(topo, "cores"), 6);
    CHECK_STR(json_string_value(json_object_get(core, "pus")), "12-13");
    CHECK_INT(json_integer_value(json_object_get(core, "numa")), 1);
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(topo, "numa"), 1), "cores")),
              "4-7");
    CHECK_STR(json_string_value(json_object_get(attrs, "hostname")),
              "node1.example");
    CHECK_STR(json_string_value(json_object_get(attrs, "kernel.name")),
              "linux");
    CHECK(json_is_string(json_object_get(attrs, "arch")));
    CHECK(json_is_string(json_object_get(attrs, "kernel.release")));
    json_decref(j);
    topology_free(t);
}

int
main(void)
{
    RUN(test_synthetic);
    RUN(test_host);
    RUN(test_xml_dgx2);
    RUN(test_xml_gpus);
    RUN(test_xml_numa);
    RUN(test_fingerprint_json);
    return unit_done();
}
