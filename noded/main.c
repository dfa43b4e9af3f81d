/*
 * drover-noded: the node daemon. Reads its configuration (one table:
 * defaults, file, DROVER_* environment, flags), fingerprints the host,
 * then runs the daemon on one libev loop until SIGTERM/SIGINT. SIGHUP
 * reloads the log level, log file and kill grace.
 */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define OPT(name, type, def, min, max, reload, field, help)                    \
    {                                                                          \
        name, type, def, min, max, reload,                                     \
            offsetof(struct noded_config, field), help                         \
    }

static const struct dv_conf_opt noded_opts[] = {
    OPT("server", DV_CONF_STRING, "http://127.0.0.1:4750", 0, 0, 0, server,
        "qmgr base address (http://, https:// or unix:/path)"),
    OPT("name", DV_CONF_STRING, NULL, 0, 0, 0, name,
        "node name (default: the short host name)"),
    OPT("data-dir", DV_CONF_STRING, "/var/lib/drover/noded", 0, 0, 0, data_dir,
        "allocation directories go under DIR/alloc"),
    OPT("datacenter", DV_CONF_STRING, "dc1", 0, 0, 0, datacenter,
        "datacenter of this node"),
    OPT("pool", DV_CONF_STRING, "default", 0, 0, 0, pool,
        "node pool of this node"),
    OPT("node-class", DV_CONF_STRING, NULL, 0, 0, 0, node_class,
        "node class, for ${node.class} constraints"),
    OPT("meta", DV_CONF_STRING, NULL, 0, 0, 0, meta,
        "labels for ${meta.KEY} constraints: \"key=value,key=value\""),
    OPT("topology-xml", DV_CONF_STRING, NULL, 0, 0, 0, topology_xml,
        "load this hwloc XML topology instead of the host's (tests)"),
    OPT("topology-synthetic", DV_CONF_STRING, NULL, 0, 0, 0, topology_synthetic,
        "use this hwloc synthetic topology, e.g. \"pack:1 numa:2 core:4 "
        "pu:2\" (tests)"),
    OPT("memory", DV_CONF_SIZE, NULL, 0, INT64_MAX, 0, memory,
        "total memory to advertise, e.g. 4gb (default: what hwloc finds)"),
    OPT("allow-root", DV_CONF_BOOL, "false", 0, 0, 0, allow_root,
        "run jobs owned by root as root (refused otherwise)"),
    OPT("memory-cgroup", DV_CONF_BOOL, "true", 0, 0, 0, memory_cgroup,
        "limit each job's memory with a cgroup where the memory controller "
        "works (false: sample its RSS instead)"),
    OPT("kill-grace", DV_CONF_DURATION, "10s", 0, 3600000, 1, kill_grace,
        "delay between SIGTERM and SIGKILL"),
    OPT("tls-ca", DV_CONF_STRING, NULL, 0, 0, 0, tls_ca,
        "CA bundle to verify qmgr with"),
    OPT("tls-cert", DV_CONF_STRING, NULL, 0, 0, 0, tls_cert,
        "client certificate for mutual TLS"),
    OPT("tls-key", DV_CONF_STRING, NULL, 0, 0, 0, tls_key,
        "client key for mutual TLS"),
    OPT("log-level", DV_CONF_STRING, "info", 0, 0, 1, log_level,
        "debug, info, notice, warn or error"),
    OPT("log-file", DV_CONF_STRING, NULL, 0, 0, 1, log_file,
        "append the log here (default: stderr)"),
    OPT("disk", DV_CONF_SIZE, NULL, 0, INT64_MAX, 0, disk,
        "ephemeral disk to offer (default: free space of data-dir; "
        "simulated: 100gb)"),
    OPT("simulate", DV_CONF_INT, "0", 0, 100000, 0, simulate,
        "run N simulated nodes named NAME-1..NAME-N (scale tests)"),
    OPT("simulate-topology", DV_CONF_STRING, "pack:2 numa:2 core:16 pu:1", 0, 0,
        0, simulate_topology,
        "hwloc synthetic topology of the simulated nodes"),
    OPT("simulate-mix", DV_CONF_BOOL, "false", 0, 0, 0, simulate_mix,
        "simulated nodes of a few sizes, some with GPUs"),
    OPT("simulate-running", DV_CONF_BOOL, "true", 0, 0, 0, simulate_running,
        "simulated allocations report running (false: only their end, "
        "half the status writes)"),
};
#define NODED_NOPTS (sizeof(noded_opts) / sizeof(noded_opts[0]))

/* What SIGHUP needs to re-read the configuration. */
static struct noded_config main_cfg;
static struct dv_conf_args main_args;
static int main_argc;
static char **main_argv;

static int
apply_logging(const struct noded_config *cfg, const char *progname,
              struct dv_err *err)
{
    enum dv_log_level level;

    if (dv_log_level_parse(cfg->log_level, &level) < 0) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "invalid value \"%s\" for log-level: expected debug, "
                   "info, notice, warn or error",
                   cfg->log_level);
        return -1;
    }
    if (dv_log_setup(progname, level, cfg->log_file) < 0) {
        dv_err_set(err, DV_EIO, "invalid_config",
                   "could not open log file \"%s\"", cfg->log_file);
        return -1;
    }
    return 0;
}

static void
reload(struct noded *nd)
{
    struct dv_err err;

    (void)nd;
    if (dv_conf_reload(noded_opts, NODED_NOPTS, &main_cfg,
                       main_args.config_path, main_argc, main_argv, &err) < 0) {
        log_error("could not reload the configuration: %s", err.msg);
        return;
    }
    if (apply_logging(&main_cfg, NULL, &err) < 0) {
        log_error("could not reload the configuration: %s", err.msg);
        return;
    }
    log_notice("configuration reloaded: log level %s, kill grace %gs",
               main_cfg.log_level, main_cfg.kill_grace);
}

/* Fills in defaults that depend on the host and checks the values. */
static int
finish_config(struct noded_config *cfg, struct dv_err *err)
{
    enum dv_log_level level;

    if (cfg->name == NULL || cfg->name[0] == '\0') {
        char host[256];

        if (gethostname(host, sizeof(host)) < 0) {
            host[0] = '\0';
        }
        host[sizeof(host) - 1] = '\0';
        host[strcspn(host, ".")] = '\0';
        free(cfg->name);
        cfg->name = dv_xstrdup(host[0] != '\0' ? host : "localhost");
    }
    if (dv_log_level_parse(cfg->log_level, &level) < 0) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "invalid value \"%s\" for log-level: expected debug, "
                   "info, notice, warn or error",
                   cfg->log_level);
        return -1;
    }
    if (cfg->data_dir == NULL || cfg->data_dir[0] != '/') {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "data-dir must be an absolute path");
        return -1;
    }
    if (cfg->simulate > 0 && dv_str_empty(cfg->simulate_topology) &&
        !cfg->simulate_mix) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "simulate-topology must not be empty");
        return -1;
    }
    json_t *meta = noded_meta_parse(cfg->meta, err);
    if (meta == NULL) {
        return -1;
    }
    json_decref(meta);
    if (cfg->topology_xml != NULL && cfg->topology_synthetic != NULL) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "topology-xml and topology-synthetic cannot be used "
                   "together");
        return -1;
    }
    return 0;
}

/* --simulate N: the virtual nodes on one loop until SIGTERM. Returns the
 * exit status. */
static int
run_simulation(struct noded_config *cfg, int check_only)
{
    struct dv_err err;
    struct ev_loop *loop = NULL;
    struct sim *s = NULL;
    int rc = 1;
    long nofile;

    if (!check_only && apply_logging(cfg, "drover-noded", &err) < 0) {
        fprintf(stderr, "drover-noded: %s\n", err.msg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    nofile = noded_raise_nofile();
    loop = ev_loop_new(EVFLAG_AUTO);
    if (loop == NULL) {
        fprintf(stderr, "drover-noded: could not create the event loop\n");
        return 1;
    }
    s = sim_new(loop, cfg, &err);
    if (s == NULL) {
        fprintf(stderr, "drover-noded: %s\n", err.msg);
        rc = check_only ? 2 : 1;
        goto out;
    }
    if (check_only) {
        printf("configuration is valid: %lld simulated nodes\n",
               (long long)cfg->simulate);
        rc = 0;
        goto out;
    }
    if (nofile > 0 && nofile < 2 * cfg->simulate + 64) {
        log_warn("the open files limit (%ld) is low for %lld simulated "
                 "nodes (each keeps a long poll open)",
                 nofile, (long long)cfg->simulate);
    }
    sim_set_reload(s, reload);
    if (sim_start(s, &err) < 0) {
        log_error("could not start the simulation: %s", err.msg);
        goto out;
    }
    ev_run(loop, 0);
    rc = sim_exit_status(s);
out:
    sim_free(s);
    ev_loop_destroy(loop);
    return rc;
}

/* A daemon whose stdin, stdout or stderr is closed would hand those
 * numbers to the first files it opens. */
static void
ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                close(n);
            }
        }
    }
}

int
main(int argc, char **argv)
{
    struct dv_err err;
    struct dv_buf out;
    struct topology *topo = NULL;
    struct ev_loop *loop = NULL;
    struct noded nd;
    int rc = 1, nd_ready = 0;

    ensure_std_fds();
    main_argc = argc;
    main_argv = argv;
    dv_buf_init(&out);
    if (dv_conf_load(noded_opts, NODED_NOPTS, &main_cfg, argc, argv, &main_args,
                     &err) < 0) {
        fprintf(stderr, "drover-noded: %s\n", err.msg);
        dv_conf_cleanup(noded_opts, NODED_NOPTS, &main_cfg);
        return 2;
    }
    if (main_args.help) {
        dv_buf_puts(&out, "usage: drover-noded [--config FILE] [options]\n"
                          "       drover-noded --check-config | "
                          "--print-config\n\noptions (environment "
                          "DROVER_<NAME>):\n");
        dv_conf_usage(noded_opts, NODED_NOPTS, &out);
        fputs(dv_buf_str(&out), stdout);
        rc = 0;
        goto out;
    }
    if (main_args.nargs > 0) {
        fprintf(stderr, "drover-noded: unexpected argument \"%s\"\n",
                main_args.args[0]);
        rc = 2;
        goto out;
    }
    if (finish_config(&main_cfg, &err) < 0) {
        fprintf(stderr, "drover-noded: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    if (main_args.print_config) {
        dv_conf_format(noded_opts, NODED_NOPTS, &main_cfg, &out);
        fputs(dv_buf_str(&out), stdout);
        rc = 0;
        goto out;
    }
    if (main_cfg.simulate > 0) {
        rc = run_simulation(&main_cfg, main_args.check_config);
        goto out;
    }
    topo = topology_load(main_cfg.topology_xml, main_cfg.topology_synthetic,
                         main_cfg.memory, &err);
    if (topo == NULL) {
        fprintf(stderr, "drover-noded: %s\n", err.msg);
        rc = main_args.check_config ? 2 : 1;
        goto out;
    }
    if (main_args.check_config) {
        printf("configuration is valid: node %s, %d cores, %d PUs, %d NUMA "
               "nodes, %d GPUs\n",
               main_cfg.name, topo->ncores, topo->npus, topo->nnuma,
               topo->ngpus);
        rc = 0;
        goto out;
    }
    if (apply_logging(&main_cfg, "drover-noded", &err) < 0) {
        fprintf(stderr, "drover-noded: %s\n", err.msg);
        goto out;
    }
    umask(022);
    signal(SIGPIPE, SIG_IGN);
    noded_raise_nofile();
    if (allocdir_init(main_cfg.data_dir, &err) < 0) {
        log_error("%s", err.msg);
        goto out;
    }
    if (geteuid() != 0) {
        log_warn("not running as root: only jobs of uid %d can run",
                 (int)geteuid());
    } else {
        struct stat st;

        if (stat(main_cfg.data_dir, &st) == 0 && !(st.st_mode & S_IXOTH)) {
            log_warn("data directory \"%s\" is mode %03o: jobs of other "
                     "users cannot reach their allocation directories",
                     main_cfg.data_dir, (unsigned)(st.st_mode & 0777));
        }
    }
    loop = ev_loop_new(EVFLAG_AUTO);
    if (loop == NULL) {
        log_error("could not create the event loop");
        goto out;
    }
    noded_init(&nd, loop, &main_cfg, topo);
    nd_ready = 1;
    if (nd.disk <= 0) {
        nd.disk = noded_disk_space(main_cfg.data_dir);
    }
    nd.reload_cb = reload;
    noded_start_signals(&nd);
    if (client_start(&nd, 0, &err) < 0) {
        log_error("could not start the HTTP client: %s", err.msg);
        goto out;
    }
    log_notice("drover-noded starting: node %s, server %s, data in %s",
               main_cfg.name, main_cfg.server, main_cfg.data_dir);
    ev_run(loop, 0);
    rc = nd.exit_status;
out:
    if (nd_ready) {
        noded_cleanup(&nd);
    }
    if (loop != NULL) {
        ev_loop_destroy(loop);
    }
    topology_free(topo);
    dv_buf_cleanup(&out);
    dv_conf_args_cleanup(&main_args);
    dv_conf_cleanup(noded_opts, NODED_NOPTS, &main_cfg);
    return rc;
}
