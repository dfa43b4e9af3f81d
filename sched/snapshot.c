/*
 * The scheduler process's in-memory snapshot of the nodes, shared by its
 * workers under a read-write lock. A refresh reads only the rows whose
 * modify_index moved past the highest one seen, and a node's topology and
 * labels only when it registered again. Because sequence values are drawn
 * before commit, a row can commit with an index below one already seen; a
 * periodic full read (--full-refresh) and the truth every commit reads
 * under its row locks keep such rows from staying stale.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/cpuset.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "sched/sched.h"

void
snapshot_init(struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    pthread_rwlock_init(&s->lock, NULL);
    s->last_index = -1;
}

void
snap_node_free(struct snap_node *n)
{
    if (n == NULL) {
        return;
    }
    free(n->name);
    free(n->datacenter);
    free(n->pool);
    free(n->node_class);
    hwloc_bitmap_free(n->free_cores);
    hwloc_bitmap_free(n->free_gpus);
    hwloc_bitmap_free(n->db_cores);
    hwloc_bitmap_free(n->db_gpus);
    hwloc_bitmap_free(n->pend_cores);
    hwloc_bitmap_free(n->pend_gpus);
    for (int i = 0; i < n->nnuma; i++) {
        hwloc_bitmap_free(n->numa_cores[i]);
    }
    free(n->numa_cores);
    for (int i = 0; i < n->npkg; i++) {
        hwloc_bitmap_free(n->pkg_cores[i]);
    }
    free(n->pkg_cores);
    free(n->gpu_numa);
    for (int i = 0; i < n->nattrs; i++) {
        free(n->attrs[i].key);
        free(n->attrs[i].value);
    }
    free(n->attrs);
    free(n->resv);
    free(n);
}

void
snap_node_recompute(struct snap_node *n)
{
    if (n->pend_cores == NULL) {
        n->pend_cores = hwloc_bitmap_alloc();
        n->pend_gpus = hwloc_bitmap_alloc();
    }
    if (n->free_cores == NULL) {
        n->free_cores = hwloc_bitmap_alloc();
        n->free_gpus = hwloc_bitmap_alloc();
    }
    hwloc_bitmap_andnot(n->free_cores, n->db_cores, n->pend_cores);
    n->nfree_cores = hwloc_bitmap_weight(n->free_cores);
    hwloc_bitmap_andnot(n->free_gpus, n->db_gpus, n->pend_gpus);
    n->free_mem = n->db_mem - n->pend_mem;
    n->free_disk = n->db_disk - n->pend_disk;
}

void
snapshot_hold(struct snapshot *s, const struct plan *plan, int sign)
{
    for (int i = 0; i < plan->nplacements; i++) {
        const struct placement *pl = &plan->placements[i];
        struct snap_node *n = snapshot_find(s, pl->pn->node->id);
        if (n == NULL) {
            continue;
        }
        if (n->pend_cores == NULL) {
            snap_node_recompute(n);
        }
        if (sign > 0) {
            hwloc_bitmap_or(n->pend_cores, n->pend_cores, pl->cores);
            hwloc_bitmap_or(n->pend_gpus, n->pend_gpus, pl->gpus);
        } else {
            hwloc_bitmap_andnot(n->pend_cores, n->pend_cores, pl->cores);
            hwloc_bitmap_andnot(n->pend_gpus, n->pend_gpus, pl->gpus);
        }
        n->pend_mem += sign * pl->mem;
        n->pend_disk += sign * pl->disk;
        snap_node_recompute(n);
    }
}

void
snapshot_cleanup(struct snapshot *s)
{
    for (int i = 0; i < s->n; i++) {
        snap_node_free(s->nodes[i]);
    }
    free(s->nodes);
    pthread_rwlock_destroy(&s->lock);
    memset(s, 0, sizeof(*s));
}

static int
find_index(const struct snapshot *s, int64_t id)
{
    int lo = 0, hi = s->n - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->nodes[mid]->id == id) {
            return mid;
        }
        if (s->nodes[mid]->id < id) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return -(lo + 1);
}

struct snap_node *
snapshot_find(const struct snapshot *s, int64_t id)
{
    int i = find_index(s, id);

    return i >= 0 ? s->nodes[i] : NULL;
}

void
snapshot_put(struct snapshot *s, struct snap_node *n)
{
    int i = find_index(s, n->id);

    if (i >= 0) {
        snap_node_free(s->nodes[i]);
        s->nodes[i] = n;
        return;
    }
    i = -i - 1;
    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 64 : s->cap * 2;
        s->nodes = dv_xrealloc(s->nodes, sizeof(*s->nodes) * (size_t)s->cap);
    }
    memmove(&s->nodes[i + 1], &s->nodes[i],
            sizeof(*s->nodes) * (size_t)(s->n - i));
    s->nodes[i] = n;
    s->n++;
}

static int
attr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct snap_attr *)a)->key,
                  ((const struct snap_attr *)b)->key);
}

const char *
snap_node_attr(const struct snap_node *n, const char *key)
{
    struct snap_attr k = {.key = (char *)key};
    const struct snap_attr *a;

    if (n->nattrs == 0) {
        return NULL;
    }
    a = bsearch(&k, n->attrs, (size_t)n->nattrs, sizeof(*n->attrs), attr_cmp);
    return a != NULL ? a->value : NULL;
}

void
snap_node_set_attr(struct snap_node *n, const char *key, const char *value)
{
    for (int i = 0; i < n->nattrs; i++) {
        if (strcmp(n->attrs[i].key, key) == 0) {
            free(n->attrs[i].value);
            n->attrs[i].value = dv_xstrdup(value);
            return;
        }
    }
    n->attrs = dv_xrealloc(n->attrs, sizeof(*n->attrs) * (size_t)(n->nattrs + 1));
    n->attrs[n->nattrs].key = dv_xstrdup(key);
    n->attrs[n->nattrs].value = dv_xstrdup(value);
    n->nattrs++;
    qsort(n->attrs, (size_t)n->nattrs, sizeof(*n->attrs), attr_cmp);
}

static hwloc_bitmap_t
parse_set(const char *s)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc();

    if (s != NULL && *s != '\0' &&
        (hwloc_bitmap_list_sscanf(b, s) < 0 || hwloc_bitmap_weight(b) < 0)) {
        hwloc_bitmap_zero(b);
    }
    return b;
}

/* Topology as noded registers it; a node without one is one package and
 * one NUMA node holding every core. */
static void
set_topology(struct snap_node *n, const char *json)
{
    json_t *root = json != NULL ? json_loads(json, 0, NULL) : NULL;
    json_t *numa = json_object_get(root, "numa");
    json_t *pkgs = json_object_get(root, "packages");
    json_t *gpus = json_object_get(root, "gpus");
    json_t *v;
    size_t i;

    for (int k = 0; k < n->nnuma; k++) {
        hwloc_bitmap_free(n->numa_cores[k]);
    }
    for (int k = 0; k < n->npkg; k++) {
        hwloc_bitmap_free(n->pkg_cores[k]);
    }
    free(n->numa_cores);
    free(n->pkg_cores);
    free(n->gpu_numa);
    n->numa_cores = NULL;
    n->pkg_cores = NULL;
    n->gpu_numa = NULL;
    n->nnuma = n->npkg = n->ngpu_numa = 0;
    if (json_is_array(numa) && json_array_size(numa) > 0) {
        n->numa_cores = dv_xcalloc(json_array_size(numa), sizeof(hwloc_bitmap_t));
        json_array_foreach(numa, i, v)
        {
            n->numa_cores[n->nnuma++] =
                parse_set(json_string_value(json_object_get(v, "cores")));
        }
    }
    if (json_is_array(pkgs) && json_array_size(pkgs) > 0) {
        n->pkg_cores = dv_xcalloc(json_array_size(pkgs), sizeof(hwloc_bitmap_t));
        json_array_foreach(pkgs, i, v)
        {
            n->pkg_cores[n->npkg++] =
                parse_set(json_string_value(json_object_get(v, "cores")));
        }
    }
    if (json_is_array(gpus) && json_array_size(gpus) > 0) {
        n->gpu_numa = dv_xcalloc(json_array_size(gpus), sizeof(int));
        json_array_foreach(gpus, i, v)
        {
            json_t *nm = json_object_get(v, "numa");
            n->gpu_numa[n->ngpu_numa++] =
                json_is_integer(nm) ? (int)json_integer_value(nm) : -1;
        }
    }
    if (n->nnuma == 0) {
        char *all = dv_cpuset_first_n(n->total_cores);
        n->numa_cores = dv_xcalloc(1, sizeof(hwloc_bitmap_t));
        n->numa_cores[0] = parse_set(all);
        n->nnuma = 1;
        free(all);
    }
    if (n->npkg == 0) {
        n->pkg_cores = dv_xcalloc(1, sizeof(hwloc_bitmap_t));
        n->pkg_cores[0] = hwloc_bitmap_alloc();
        for (int k = 0; k < n->nnuma; k++) {
            hwloc_bitmap_or(n->pkg_cores[0], n->pkg_cores[0], n->numa_cores[k]);
        }
        n->npkg = 1;
    }
    json_decref(root);
}

static void
set_labels(struct snap_node *n, const char *attributes, const char *meta)
{
    json_t *a = attributes != NULL ? json_loads(attributes, 0, NULL) : NULL;
    json_t *m = meta != NULL ? json_loads(meta, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    char num[32];

    for (int i = 0; i < n->nattrs; i++) {
        free(n->attrs[i].key);
        free(n->attrs[i].value);
    }
    free(n->attrs);
    n->attrs = NULL;
    n->nattrs = 0;
    for (int pass = 0; pass < 2; pass++) {
        json_t *o = pass == 0 ? a : m;
        const char *prefix = pass == 0 ? "attr." : "meta.";
        if (!json_is_object(o)) {
            continue;
        }
        json_object_foreach(o, key, v)
        {
            char *k = dv_xasprintf("%s%s", prefix, key);
            char *text = json_is_string(v)
                             ? dv_xstrdup(json_string_value(v))
                             : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            snap_node_set_attr(n, k, text != NULL ? text : "");
            free(k);
            free(text);
        }
    }
    snap_node_set_attr(n, "node.name", n->name);
    snap_node_set_attr(n, "node.datacenter", n->datacenter);
    snap_node_set_attr(n, "node.pool", n->pool);
    if (n->node_class != NULL) {
        snap_node_set_attr(n, "node.class", n->node_class);
    }
    snprintf(num, sizeof(num), "%lld", (long long)n->id);
    snap_node_set_attr(n, "node.id", num);
    snprintf(num, sizeof(num), "%d", n->total_cores);
    snap_node_set_attr(n, "attr.cpu.numcores", num);
    snprintf(num, sizeof(num), "%lld", (long long)n->total_mem);
    snap_node_set_attr(n, "attr.memory.totalbytes", num);
    snprintf(num, sizeof(num), "%d", n->total_gpus);
    snap_node_set_attr(n, "attr.gpu.count", num);
    json_decref(a);
    json_decref(m);
}

struct snap_node *
snap_node_new(int64_t id, const char *name, int cores, int64_t mem, int gpus,
              const char *topology)
{
    struct snap_node *n = dv_xcalloc(1, sizeof(*n));
    char *all = dv_cpuset_first_n(cores);
    char *gall = dv_cpuset_first_n(gpus);

    n->id = id;
    n->name = dv_xstrdup(name);
    n->datacenter = dv_xstrdup("dc1");
    n->pool = dv_xstrdup("default");
    n->ready = 1;
    n->total_cores = cores;
    n->total_mem = mem;
    n->total_gpus = gpus;
    n->db_cores = parse_set(all);
    n->db_mem = mem;
    n->db_gpus = parse_set(gall);
    snap_node_recompute(n);
    set_topology(n, topology);
    set_labels(n, NULL, NULL);
    free(all);
    free(gall);
    return n;
}

struct snap_node *
snap_node_clone(const struct snap_node *n)
{
    struct snap_node *c = dv_xcalloc(1, sizeof(*c));

    *c = *n;
    c->name = dv_xstrdup(n->name);
    c->datacenter = dv_xstrdup(n->datacenter);
    c->pool = dv_xstrdup(n->pool);
    c->node_class = dv_xstrdup(n->node_class);
    c->free_cores = hwloc_bitmap_dup(n->free_cores);
    c->free_gpus = hwloc_bitmap_dup(n->free_gpus);
    c->db_cores = NULL;
    c->db_gpus = NULL;
    c->pend_cores = NULL;
    c->pend_gpus = NULL;
    c->numa_cores = dv_xcalloc((size_t)n->nnuma + 1, sizeof(hwloc_bitmap_t));
    for (int i = 0; i < n->nnuma; i++) {
        c->numa_cores[i] = hwloc_bitmap_dup(n->numa_cores[i]);
    }
    c->pkg_cores = dv_xcalloc((size_t)n->npkg + 1, sizeof(hwloc_bitmap_t));
    for (int i = 0; i < n->npkg; i++) {
        c->pkg_cores[i] = hwloc_bitmap_dup(n->pkg_cores[i]);
    }
    c->gpu_numa = dv_xcalloc((size_t)n->ngpu_numa + 1, sizeof(int));
    if (n->ngpu_numa > 0) {
        memcpy(c->gpu_numa, n->gpu_numa, sizeof(int) * (size_t)n->ngpu_numa);
    }
    /* Labels are only needed while planning. */
    c->attrs = NULL;
    c->nattrs = 0;
    c->resv = dv_xcalloc((size_t)n->nresv + 1, sizeof(*c->resv));
    if (n->nresv > 0) {
        memcpy(c->resv, n->resv, sizeof(*c->resv) * (size_t)n->nresv);
    }
    return c;
}

static char *
dup_or(const PGresult *res, int row, const char *col, const char *def)
{
    const char *v = dv_db_get(res, row, col);

    return dv_xstrdup(v != NULL ? v : def);
}

/* Fills the capacity part of n from row i of res. */
static void
set_capacity(struct snap_node *n, const PGresult *res, int i)
{
    hwloc_bitmap_free(n->db_cores);
    hwloc_bitmap_free(n->db_gpus);
    n->ready = dv_db_get_bool(res, i, "ready", 0);
    n->total_cores = (int)dv_db_get_i64(res, i, "total_cores", 0);
    n->total_mem = dv_db_get_i64(res, i, "total_mem", 0);
    n->total_gpus = (int)dv_db_get_i64(res, i, "total_gpus", 0);
    n->total_disk = dv_db_get_i64(res, i, "total_disk", 0);
    n->db_cores = parse_set(dv_db_get(res, i, "free_cpuset"));
    n->db_mem = dv_db_get_i64(res, i, "free_mem", 0);
    n->db_gpus = parse_set(dv_db_get(res, i, "free_gpuset"));
    n->db_disk = dv_db_get_i64(res, i, "free_disk", 0);
    snap_node_recompute(n);
    n->capacity_index = dv_db_get_i64(res, i, "capacity_index", 0);
    n->modify_index = dv_db_get_i64(res, i, "modify_index", 0);
    n->excl_job = dv_db_get_i64(res, i, "excl_job", 0);
}

int
snap_node_empty(const struct snap_node *n)
{
    return n->nfree_cores == n->total_cores && n->free_mem == n->total_mem &&
           hwloc_bitmap_weight(n->free_gpus) == n->total_gpus;
}

void
snap_resv_read(const PGresult *res, int row, struct snap_resv *r)
{
    r->job_id = dv_db_get_i64(res, row, "job_id", 0);
    r->priority = (int)dv_db_get_i64(res, row, "priority", 0);
    r->queue_priority = (int)dv_db_get_i64(res, row, "queue_priority", 0);
    r->fairshare = dv_db_get_double(res, row, "fairshare", -INFINITY);
    r->kind = sched_resv_kind(dv_db_get(res, row, "kind"));
    r->start = dv_db_get_double(res, row, "start", 0);
    r->cores = (int)dv_db_get_i64(res, row, "cores", 0);
    r->mem = dv_db_get_i64(res, row, "mem", 0);
    r->gpus = (int)dv_db_get_i64(res, row, "gpus", 0);
    r->busy_cores = (int)dv_db_get_i64(res, row, "busy_cores", 0);
    r->busy_mem = dv_db_get_i64(res, row, "busy_mem", 0);
    r->busy_gpus = (int)dv_db_get_i64(res, row, "busy_gpus", 0);
}

int
snapshot_refresh(struct snapshot *s, struct dv_db *db, int full,
                 struct dv_err *err)
{
    static const char changed[] =
        "SELECT id, name, datacenter, pool, node_class, "
        "status = 'ready' AND eligible AND NOT drain AS ready, total_cores, "
        "total_mem, total_gpus, total_disk, free_cpuset, free_mem, "
        "free_gpuset, free_disk, capacity_index, modify_index, excl_job, "
        "extract(epoch FROM register_time) AS register_time "
        "FROM nodes WHERE modify_index > $1 ORDER BY id";
    /* Only the parts of the topology placement uses (not every core's
     * PU list): parsing 5,000 whole topologies costs seconds. */
    static const char labels[] =
        "SELECT id, jsonb_build_object('numa', topology->'numa', "
        "'packages', topology->'packages', 'gpus', topology->'gpus') "
        "AS topology, attributes, meta FROM nodes "
        "WHERE id = ANY($1::bigint[]) ORDER BY id";
    /* Reservations of jobs that still wait for placement. */
    static const char reservations[] =
        "SELECT r.node_id, r.job_id, r.priority, r.queue_priority, "
        "r.fairshare, r.kind, r.cores, r.mem, "
        "r.gpus, coalesce(extract(epoch FROM r.start_time), 0) AS start, "
        "b.cores AS busy_cores, b.mem AS busy_mem, b.gpus AS busy_gpus "
        "FROM reservations r JOIN jobs j ON j.id = r.job_id "
        "CROSS JOIN LATERAL drover_busy_at(r.node_id, r.start_time) b "
        "WHERE r.expire_time > to_timestamp($1) "
        "AND j.state IN ('queued', 'running') ORDER BY r.node_id";
    char b1[24], nowb[32];
    PGresult *res = NULL, *lab = NULL, *resv = NULL;
    struct dv_buf ids;
    int64_t since, max_index;
    int nlab = 0, next_lab = 0, rc = -1;

    dv_buf_init(&ids);
    pthread_rwlock_rdlock(&s->lock);
    since = full ? -1 : s->last_index;
    pthread_rwlock_unlock(&s->lock);
    {
        const char *p[] = {dv_db_i64(b1, since)};
        res = dv_db_exec(db, changed, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    /* Which rows need their topology and labels read too. */
    pthread_rwlock_rdlock(&s->lock);
    dv_buf_putc(&ids, '{');
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = dv_db_get_i64(res, i, "id", 0);
        const struct snap_node *n = snapshot_find(s, id);
        if (n == NULL || n->register_time !=
                             dv_db_get_double(res, i, "register_time", 0)) {
            dv_buf_printf(&ids, "%s%lld", nlab++ > 0 ? "," : "",
                          (long long)id);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    dv_buf_putc(&ids, '}');
    if (nlab > 0) {
        const char *p[] = {dv_buf_str(&ids)};
        lab = dv_db_exec(db, labels, 1, p, err);
        if (lab == NULL) {
            goto out;
        }
    }
    {
        const char *p[] = {dv_db_double(nowb, dv_now())};
        resv = dv_db_exec(db, reservations, 1, p, err);
        if (resv == NULL) {
            goto out;
        }
    }
    pthread_rwlock_wrlock(&s->lock);
    max_index = s->last_index;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = dv_db_get_i64(res, i, "id", 0);
        struct snap_node *n = snapshot_find(s, id);
        int fresh = n == NULL;
        const char *topo = NULL, *attrs = NULL, *meta = NULL;

        /* both results are ordered by id: walk them together */
        while (lab != NULL && next_lab < PQntuples(lab) &&
               dv_db_get_i64(lab, next_lab, "id", 0) < id) {
            next_lab++;
        }
        if (lab != NULL && next_lab < PQntuples(lab) &&
            dv_db_get_i64(lab, next_lab, "id", 0) == id) {
            topo = dv_db_get(lab, next_lab, "topology");
            attrs = dv_db_get(lab, next_lab, "attributes");
            meta = dv_db_get(lab, next_lab, "meta");
        }
        if (!fresh && topo == NULL &&
            dv_db_get_i64(res, i, "modify_index", 0) < n->modify_index) {
            /* an older row than a commit already fed back */
            continue;
        }
        if (fresh) {
            n = dv_xcalloc(1, sizeof(*n));
            n->id = id;
        }
        free(n->name);
        free(n->datacenter);
        free(n->pool);
        free(n->node_class);
        n->name = dup_or(res, i, "name", "");
        n->datacenter = dup_or(res, i, "datacenter", "");
        n->pool = dup_or(res, i, "pool", "");
        n->node_class = dv_xstrdup(dv_db_get(res, i, "node_class"));
        set_capacity(n, res, i);
        if (fresh || topo != NULL) {
            n->register_time = dv_db_get_double(res, i, "register_time", 0);
            set_topology(n, topo);
            set_labels(n, attrs, meta);
        }
        if (fresh) {
            snapshot_put(s, n);
        }
        if (n->modify_index > max_index) {
            max_index = n->modify_index;
        }
        if (n->capacity_index > s->capacity_index) {
            s->capacity_index = n->capacity_index;
        }
    }
    /* Reservations are few: read whole every time. */
    for (int k = 0; k < s->n; k++) {
        free(s->nodes[k]->resv);
        s->nodes[k]->resv = NULL;
        s->nodes[k]->nresv = 0;
    }
    for (int i = 0; i < PQntuples(resv); i++) {
        struct snap_node *n =
            snapshot_find(s, dv_db_get_i64(resv, i, "node_id", 0));
        struct snap_resv *r;
        if (n == NULL) {
            continue;
        }
        n->resv = dv_xrealloc(n->resv, sizeof(*n->resv) * (size_t)(n->nresv + 1));
        r = &n->resv[n->nresv++];
        snap_resv_read(resv, i, r);
    }
    s->last_index = max_index;
    if (full) {
        s->last_full = dv_now();
        s->want_full = 0;
    }
    pthread_rwlock_unlock(&s->lock);
    rc = 0;
out:
    PQclear(res);
    PQclear(lab);
    PQclear(resv);
    dv_buf_cleanup(&ids);
    return rc;
}
