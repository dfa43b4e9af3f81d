/*
 * Conventions shared by the PBS commands (pbs-cli.md section 0): "--version"
 * alone prints the version, and the API's error codes are reported as PBS
 * reports them: the server text PBS prints (some end in a space, as PBS's
 * do) and the exit status the shell sees (PBS exits with pbs_errno, so
 * errno mod 256). The table follows docs/api.md.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

static const struct pbs_error pbs_errors[] = {
    {"job_not_found", "Unknown Job Id", 15001, 153},
    {"unknown_attribute", "Undefined attribute ", 15002, 154},
    {"attribute_read_only",
     "Cannot set attribute, read only or insufficient permission ", 15003,
     155},
    {"forbidden", "Unauthorized Request ", 15007, 159},
    {"unknown_signal", "Unknown/illegal signal name", 15013, 165},
    {"modify_running", "Cannot modify attribute while job running ", 15015,
     167},
    {"bad_resource_value", "Illegal attribute or resource value", 15014, 166},
    {"bad_attribute_value", "Illegal attribute or resource value", 15014, 166},
    {"bad_state", "Request invalid for state of job", 15016, 168},
    {"unknown_queue", "Unknown queue", 15018, 170},
    {"queue_disabled", "Queue is not enabled", 15021, 173},
    {"queue_denied", "Access to queue is denied", 15022, 174},
    {"queue_exists", "Queue already exists", 15025, 177},
    {"queue_busy", "Cannot delete busy queue", 15027, 179},
    {"bad_queue_name", "Illegal attribute or resource value", 15014, 166},
    {"not_supported", "Feature/function not supported", 15029, 125},
    {"unknown_resource", "Unknown resource", 15035, 187},
    {"over_limits", "Job violates queue and/or server resource limits", 15036,
     188},
    {"not_rerunnable", "job is not rerunnable", 15038, 190},
    {"no_default_queue", "No default queue specified", 15037, 189},
    {"bad_depend", "Invalid Job Dependency", 15054, 206},
    {"job_finished", "Job has finished", 15139, 35},
    {"subjob_finished", "Request invalid for finished array subjob", 15159, 55},
    {NULL, NULL, 0, 0},
};

const struct pbs_error *
pbs_error_lookup(const char *code)
{
    if (code == NULL) {
        return NULL;
    }
    for (const struct pbs_error *e = pbs_errors; e->code != NULL; e++) {
        if (strcmp(e->code, code) == 0) {
            return e;
        }
    }
    return NULL;
}

int
pbs_error_exit_status(const char *code)
{
    const struct pbs_error *e = pbs_error_lookup(code);

    return e != NULL ? e->exit_status : 1;
}

int
cli_print_version_if_asked(int argc, char **argv)
{
    if (argc == 2 && strcasecmp(argv[1], "--version") == 0) {
        printf("pbs_version = %s\n", DV_VERSION);
        return 1;
    }
    return 0;
}
