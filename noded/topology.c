/*
 * The hardware fingerprint: loads the host's hwloc topology (or an XML or
 * synthetic one for tests), counts packages, NUMA nodes, cores, PUs, memory
 * and GPUs, gathers host attributes, and maps granted logical cores to the
 * PUs a job is bound to.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/strutil.h"
#include "noded/noded.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
/* hwloc's PCI plugin (libpciaccess) leaks about 1 KiB per load and is
 * unloaded before LeakSanitizer could name it; allocations made while
 * loading are not ours, so they are not reported. */
#define LOAD_BEGIN() __lsan_disable()
#define LOAD_END() __lsan_enable()
#else
#define LOAD_BEGIN()
#define LOAD_END()
#endif

static char *
bitmap_text(hwloc_const_bitmap_t b)
{
    char *s = NULL, *copy;

    if (hwloc_bitmap_iszero(b)) {
        return dv_xstrdup("");
    }
    if (hwloc_bitmap_list_asprintf(&s, b) < 0 || s == NULL) {
        abort(); /* only fails on out-of-memory */
    }
    copy = dv_xstrdup(s);
    free(s);
    return copy;
}

/* The logical index of the first NUMA node whose cpuset meets set; -1. */
static int
numa_of(hwloc_topology_t topo, hwloc_const_cpuset_t set)
{
    hwloc_obj_t n = NULL;

    if (set == NULL || hwloc_bitmap_iszero(set)) {
        return -1;
    }
    while ((n = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, n)) !=
           NULL) {
        if (n->cpuset != NULL && hwloc_bitmap_intersects(n->cpuset, set)) {
            return (int)n->logical_index;
        }
    }
    return -1;
}

static int
package_of(hwloc_topology_t topo, hwloc_obj_t obj, hwloc_const_cpuset_t set)
{
    hwloc_obj_t p;

    if (obj != NULL) {
        p = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, obj);
        if (p != NULL) {
            return (int)p->logical_index;
        }
    }
    if (set == NULL || hwloc_bitmap_iszero(set)) {
        return -1;
    }
    p = NULL;
    while ((p = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PACKAGE, p)) !=
           NULL) {
        if (hwloc_bitmap_intersects(p->cpuset, set)) {
            return (int)p->logical_index;
        }
    }
    return -1;
}

/* Logical core indexes whose PUs meet set, as list text. */
static char *
cores_within(const struct topology *t, hwloc_const_cpuset_t set)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    char *s;

    for (int i = 0; i < t->ncores; i++) {
        if (set != NULL &&
            hwloc_bitmap_intersects(t->core_objs[i]->cpuset, set)) {
            hwloc_bitmap_set(b, (unsigned)i);
        }
    }
    s = bitmap_text(b);
    hwloc_bitmap_free(b);
    return s;
}

/* An OS device that stands for a compute GPU: any co-processor (CUDA,
 * OpenCL, NVML in older exports), or a GPU device that is not a bare DRM
 * node (card0, renderD128: every display adapter has those). */
static int
is_compute_osdev(hwloc_obj_t o)
{
    if (o->attr == NULL) {
        return 0;
    }
    if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC) {
        return 1;
    }
    if (o->attr->osdev.type != HWLOC_OBJ_OSDEV_GPU || o->name == NULL) {
        return 0;
    }
    if (dv_str_has_prefix(o->name, "card") ||
        dv_str_has_prefix(o->name, "renderD") ||
        dv_str_has_prefix(o->name, "controlD")) {
        return 0;
    }
    return 1;
}

static int
is_nvidia_display(hwloc_obj_t pci)
{
    return pci->type == HWLOC_OBJ_PCI_DEVICE &&
           pci->attr->pcidev.vendor_id == 0x10de &&
           (pci->attr->pcidev.class_id >> 8) == 0x03;
}

static char *
pci_text(hwloc_obj_t pci)
{
    if (pci == NULL || pci->type != HWLOC_OBJ_PCI_DEVICE) {
        return NULL;
    }
    return dv_xasprintf("%04x:%02x:%02x.%01x", pci->attr->pcidev.domain,
                        pci->attr->pcidev.bus, pci->attr->pcidev.dev,
                        pci->attr->pcidev.func);
}

static void
add_gpu(struct topology *t, hwloc_obj_t dev, hwloc_obj_t osdev)
{
    struct topology_gpu *g;
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t->topo, dev);
    const char *model = NULL;

    t->gpus = dv_xrealloc(t->gpus, (size_t)(t->ngpus + 1) * sizeof(*t->gpus));
    g = &t->gpus[t->ngpus];
    memset(g, 0, sizeof(*g));
    g->index = t->ngpus;
    g->pci = pci_text(dev);
    if (osdev != NULL && osdev->name != NULL) {
        g->name = dv_xstrdup(osdev->name);
    } else {
        g->name = dv_xstrdup(g->pci != NULL ? g->pci : "gpu");
    }
    if (osdev != NULL) {
        model = hwloc_obj_get_info_by_name(osdev, "GPUModel");
    }
    if (model == NULL) {
        model = hwloc_obj_get_info_by_name(dev, "PCIDevice");
    }
    g->model = dv_xstrdup(model);
    g->numa = anc != NULL ? numa_of(t->topo, anc->cpuset) : -1;
    g->package = anc != NULL ? package_of(t->topo, anc, anc->cpuset) : -1;
    t->ngpus++;
}

/* One GPU per I/O device (PCI function) carrying compute OS devices: a GPU
 * with CUDA, OpenCL and NVML devices counts once. When the topology has no
 * such OS devices (exports without them, hosts without the vendor
 * libraries), NVIDIA display-class PCI devices are counted instead. */
static void
find_gpus(struct topology *t)
{
    hwloc_obj_t o = NULL;

    while ((o = hwloc_get_next_osdev(t->topo, o)) != NULL) {
        hwloc_obj_t dev = o->parent;
        int seen = 0;

        if (!is_compute_osdev(o) || dev == NULL) {
            continue;
        }
        /* Count each parent once: was one of its earlier OS devices a
         * compute device already? */
        for (hwloc_obj_t s = dev->io_first_child; s != NULL && s != o;
             s = s->next_sibling) {
            if (s->type == HWLOC_OBJ_OS_DEVICE && is_compute_osdev(s)) {
                seen = 1;
                break;
            }
        }
        if (!seen) {
            add_gpu(t, dev, o);
        }
    }
    if (t->ngpus > 0) {
        return;
    }
    o = NULL;
    while ((o = hwloc_get_next_pcidev(t->topo, o)) != NULL) {
        if (is_nvidia_display(o)) {
            add_gpu(t, o, NULL);
        }
    }
}

static int
fingerprint(struct topology *t, int64_t memory_override)
{
    hwloc_topology_t topo = t->topo;
    hwloc_obj_type_t core_type = HWLOC_OBJ_CORE;
    hwloc_obj_t o;
    int n;

    t->npackages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    t->nnuma = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    t->npus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (n <= 0) {
        core_type = HWLOC_OBJ_PU; /* no core objects: one PU, one core */
        n = t->npus;
    }
    if (n <= 0 || t->npackages < 0 || t->nnuma < 0) {
        return -1;
    }
    t->ncores = n;
    t->core_objs = dv_xcalloc((size_t)n, sizeof(*t->core_objs));
    t->cores = dv_xcalloc((size_t)n, sizeof(*t->cores));
    for (int i = 0; i < n; i++) {
        o = hwloc_get_obj_by_type(topo, core_type, (unsigned)i);
        t->core_objs[i] = o;
        t->cores[i].index = i;
        t->cores[i].pus = bitmap_text(o->cpuset);
        t->cores[i].numa = numa_of(topo, o->cpuset);
        t->cores[i].package = package_of(topo, o, o->cpuset);
    }

    t->numa =
        dv_xcalloc((size_t)(t->nnuma > 0 ? t->nnuma : 1), sizeof(*t->numa));
    t->memory = 0;
    for (int i = 0; i < t->nnuma; i++) {
        o = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
        t->numa[i].index = i;
        t->numa[i].os_index = o->os_index;
        t->numa[i].memory =
            o->attr != NULL ? o->attr->numanode.local_memory : 0;
        t->numa[i].cores = cores_within(t, o->cpuset);
        t->memory += t->numa[i].memory;
    }
    if (t->memory == 0) {
        t->memory = hwloc_get_root_obj(topo)->total_memory;
    }
    if (memory_override > 0) {
        t->memory = (uint64_t)memory_override;
    }

    t->packages = dv_xcalloc((size_t)(t->npackages > 0 ? t->npackages : 1),
                             sizeof(*t->packages));
    for (int i = 0; i < t->npackages; i++) {
        const char *model;

        o = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, (unsigned)i);
        model = hwloc_obj_get_info_by_name(o, "CPUModel");
        t->packages[i].index = i;
        t->packages[i].cores = cores_within(t, o->cpuset);
        t->packages[i].cpu_model = dv_xstrdup(model);
        if (t->cpu_model == NULL && model != NULL) {
            t->cpu_model = dv_xstrdup(model);
        }
    }
    find_gpus(t);
    return 0;
}

struct topology *
topology_load(const char *xml, const char *synthetic, int64_t memory,
              struct dv_err *err)
{
    struct topology *t = dv_xcalloc(1, sizeof(*t));
    int rc;

    if (hwloc_topology_init(&t->topo) < 0) {
        dv_err_set(err, DV_EIO, "topology", "could not initialise hwloc");
        t->topo = NULL;
        goto fail;
    }
    hwloc_topology_set_io_types_filter(t->topo,
                                       HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (!dv_str_empty(xml) && !dv_str_empty(synthetic)) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "topology-xml and topology-synthetic cannot be used "
                   "together");
        goto fail;
    }
    if (!dv_str_empty(xml) && access(xml, R_OK) < 0) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "could not read topology XML \"%s\": %s", xml,
                   strerror(errno));
        goto fail;
    }
    if (!dv_str_empty(xml) && hwloc_topology_set_xml(t->topo, xml) < 0) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "could not read topology XML \"%s\": %s", xml,
                   strerror(errno));
        goto fail;
    }
    if (!dv_str_empty(synthetic) &&
        hwloc_topology_set_synthetic(t->topo, synthetic) < 0) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "invalid synthetic topology \"%s\"", synthetic);
        goto fail;
    }
    LOAD_BEGIN();
    rc = hwloc_topology_load(t->topo);
    LOAD_END();
    if (rc < 0) {
        dv_err_set(err, DV_EIO, "topology",
                   "could not load the hwloc topology%s%s: %s",
                   dv_str_empty(xml) ? "" : " from ",
                   dv_str_empty(xml) ? "" : xml, strerror(errno));
        goto fail;
    }
    t->is_thissystem = hwloc_topology_is_thissystem(t->topo);
    if (fingerprint(t, memory) < 0) {
        dv_err_set(err, DV_EIO, "topology",
                   "the hwloc topology has no processing units");
        goto fail;
    }
    return t;
fail:
    topology_free(t);
    return NULL;
}

void
topology_free(struct topology *t)
{
    if (t == NULL) {
        return;
    }
    for (int i = 0; t->cores != NULL && i < t->ncores; i++) {
        free(t->cores[i].pus);
    }
    for (int i = 0; t->numa != NULL && i < t->nnuma; i++) {
        free(t->numa[i].cores);
    }
    for (int i = 0; t->packages != NULL && i < t->npackages; i++) {
        free(t->packages[i].cores);
        free(t->packages[i].cpu_model);
    }
    for (int i = 0; i < t->ngpus; i++) {
        free(t->gpus[i].name);
        free(t->gpus[i].pci);
        free(t->gpus[i].model);
    }
    free(t->cores);
    free(t->numa);
    free(t->packages);
    free(t->gpus);
    free(t->core_objs);
    free(t->cpu_model);
    if (t->topo != NULL) {
        hwloc_topology_destroy(t->topo);
    }
    free(t);
}

hwloc_bitmap_t
topology_cores_pus(const struct topology *t, const char *cores,
                   struct dv_err *err)
{
    hwloc_bitmap_t want = hwloc_bitmap_alloc();
    hwloc_bitmap_t pus = hwloc_bitmap_alloc();
    int i;

    if (cores != NULL && *cores != '\0' &&
        hwloc_bitmap_list_sscanf(want, cores) < 0) {
        dv_err_set(err, DV_EINVAL, "bad_cpuset", "invalid core list \"%s\"",
                   cores);
        goto fail;
    }
    if (hwloc_bitmap_weight(want) < 0) {
        dv_err_set(err, DV_EINVAL, "bad_cpuset", "core list \"%s\" is infinite",
                   cores);
        goto fail;
    }
    for (i = hwloc_bitmap_first(want); i >= 0; i = hwloc_bitmap_next(want, i)) {
        if (i >= t->ncores) {
            dv_err_set(err, DV_EINVAL, "bad_cpuset",
                       "core %d of \"%s\" is not on this node (%d cores)", i,
                       cores, t->ncores);
            goto fail;
        }
        hwloc_bitmap_or(pus, pus, t->core_objs[i]->cpuset);
    }
    hwloc_bitmap_free(want);
    return pus;
fail:
    hwloc_bitmap_free(want);
    hwloc_bitmap_free(pus);
    return NULL;
}

char *
topology_cores_pus_text(const struct topology *t, const char *cores,
                        struct dv_err *err)
{
    hwloc_bitmap_t b = topology_cores_pus(t, cores, err);
    char *s;

    if (b == NULL) {
        return NULL;
    }
    s = bitmap_text(b);
    hwloc_bitmap_free(b);
    return s;
}

/* Reads KEY=value (value maybe quoted) from /etc/os-release. */
static char *
os_release(const char *key)
{
    FILE *f = fopen("/etc/os-release", "re");
    char line[512];
    size_t klen = strlen(key);
    char *out = NULL;

    if (f == NULL) {
        f = fopen("/usr/lib/os-release", "re");
    }
    if (f == NULL) {
        return NULL;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *v, *end;

        if (strncmp(line, key, klen) != 0 || line[klen] != '=') {
            continue;
        }
        v = line + klen + 1;
        v[strcspn(v, "\r\n")] = '\0';
        if (*v == '"' || *v == '\'') {
            char q = *v++;
            end = strchr(v, q);
            if (end != NULL) {
                *end = '\0';
            }
        }
        out = dv_xstrdup(v);
        break;
    }
    fclose(f);
    return out;
}

static void
set_attr(json_t *o, const char *key, const char *value)
{
    if (value != NULL && *value != '\0') {
        json_object_set_new(o, key, json_string(value));
    }
}

static json_t *
attributes_json(const struct topology *t, const char *hostname)
{
    json_t *o = json_object();
    struct utsname u;
    char *s;

    if (uname(&u) == 0) {
        char sys[sizeof(u.sysname)];
        size_t i;

        for (i = 0; u.sysname[i] != '\0' && i + 1 < sizeof(sys); i++) {
            sys[i] = (char)tolower((unsigned char)u.sysname[i]);
        }
        sys[i] = '\0';
        set_attr(o, "kernel.name", sys);
        set_attr(o, "kernel.release", u.release);
        set_attr(o, "arch", u.machine);
    }
    s = os_release("ID");
    set_attr(o, "os.name", s);
    free(s);
    s = os_release("VERSION_ID");
    set_attr(o, "os.version", s);
    free(s);
    set_attr(o, "cpu.model", t->cpu_model);
    set_attr(o, "hostname", hostname);
    if (!t->is_thissystem) {
        set_attr(o, "topology.source", "loaded");
    }
    return o;
}

json_t *
topology_fingerprint_json(const struct topology *t, const char *hostname)
{
    json_t *packages = json_array(), *numa = json_array(),
           *cores = json_array(), *gpus = json_array();

    for (int i = 0; i < t->npackages; i++) {
        json_t *p = json_pack("{s:i, s:s}", "index", t->packages[i].index,
                              "cores", t->packages[i].cores);
        set_attr(p, "cpu_model", t->packages[i].cpu_model);
        json_array_append_new(packages, p);
    }
    for (int i = 0; i < t->nnuma; i++) {
        json_array_append_new(
            numa, json_pack("{s:i, s:I, s:s, s:I}", "index", t->numa[i].index,
                            "os_index", (json_int_t)t->numa[i].os_index,
                            "cores", t->numa[i].cores, "memory",
                            (json_int_t)t->numa[i].memory));
    }
    for (int i = 0; i < t->ncores; i++) {
        json_array_append_new(
            cores, json_pack("{s:i, s:s, s:i, s:i}", "index", t->cores[i].index,
                             "pus", t->cores[i].pus, "numa", t->cores[i].numa,
                             "package", t->cores[i].package));
    }
    for (int i = 0; i < t->ngpus; i++) {
        json_t *g = json_pack("{s:i, s:s, s:i, s:i}", "index", t->gpus[i].index,
                              "name", t->gpus[i].name, "numa", t->gpus[i].numa,
                              "package", t->gpus[i].package);
        set_attr(g, "pci", t->gpus[i].pci);
        set_attr(g, "model", t->gpus[i].model);
        json_array_append_new(gpus, g);
    }
    return json_pack(
        "{s:{s:i, s:i, s:I, s:i, s:i, s:i}, s:{s:o, s:o, s:o, s:o}, s:o}",
        "resources", "cores", t->ncores, "pus", t->npus, "memory",
        (json_int_t)t->memory, "numa_nodes", t->nnuma, "packages", t->npackages,
        "gpus", t->ngpus, "topology", "packages", packages, "numa", numa,
        "cores", cores, "gpus", gpus, "attributes",
        attributes_json(t, hostname));
}

void
topology_fake_gpus(struct topology *t, int n)
{
    for (int i = 0; i < t->ngpus; i++) {
        free(t->gpus[i].name);
        free(t->gpus[i].pci);
        free(t->gpus[i].model);
    }
    free(t->gpus);
    t->gpus = n > 0 ? dv_xcalloc((size_t)n, sizeof(*t->gpus)) : NULL;
    t->ngpus = n > 0 ? n : 0;
    for (int i = 0; i < t->ngpus; i++) {
        struct topology_gpu *g = &t->gpus[i];

        g->index = i;
        g->name = dv_xasprintf("simgpu%d", i);
        g->model = dv_xstrdup("Simulated GPU");
        g->numa = t->nnuma > 0 ? i * t->nnuma / t->ngpus : -1;
        g->package = t->npackages > 0 ? i * t->npackages / t->ngpus : -1;
    }
}
