/* engine/cli_cancel.c: `flab cancel [-f FILE] [-D T.P=V]...`: scancels the
 * Slurm jobs that running `flab build`s of this flabfile's cache submitted
 * (engine/slurm_exec.h).  Those builds then fail their cancelled targets
 * and stop; nothing of a cancelled job is committed. */
#include "engine/cli_common.h"
#include "engine/commands.h"
#include "engine/slurm_exec.h"
#include "util/error.h"
#include <stdio.h>

int cmd_cancel(int argc, char **argv) {
    ProjectArgs pa;
    Project p;
    /* no_cache: cancel only reads the running builds' job records under
     * the cache directory; it must not create a cache where none is. */
    if (project_open_noargs(argc, argv, "flab cancel [-f FLABFILE] [-D TARGET.PARAM=VALUE]...",
                            NULL, 1, &pa, &p) < 0)
        return EXIT_USAGE;
    int n = slurm_cancel_all(p.g->cache_dir);
    int rc = EXIT_OK;
    if (n < 0) { cli_error("%s", flab_errmsg()); rc = EXIT_FAILED; }
    else printf("flab: cancelled %d Slurm job%s\n", n, n == 1 ? "" : "s");
    project_close(&p);
    project_args_free(&pa);
    return rc;
}
