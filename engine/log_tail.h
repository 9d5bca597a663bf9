/* engine/log_tail.h: the last lines of a rule's log, for failure reports
 * (a local failing rule and a failed Slurm job show the same thing). */
#ifndef FLAB_ENGINE_LOG_TAIL_H
#define FLAB_ENGINE_LOG_TAIL_H
#include <stdio.h>

#define LOG_TAIL_LINES 120   /* lines of a failing rule's log to show */

/* Reads f to the end and returns its last max_lines lines as one malloc'd
 * string, each line ending in '\n'; *cut is set when earlier lines were
 * dropped.  Never NULL (an empty log gives ""). */
char *log_tail_read(FILE *f, size_t max_lines, int *cut);
#endif
