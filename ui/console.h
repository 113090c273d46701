/* console.h — `mailtap ui`: the interactive ncurses console over a mailtap database. */
#ifndef MAILTAP_UI_CONSOLE_H
#define MAILTAP_UI_CONSOLE_H

#include <sys/types.h>

/* A live source writing the database while the console reads it (another process, same
 * SQLite file in WAL mode). The console polls for new sessions every poll_ms. */
struct ui_live {
    const char *label;   /* shown in the status bar: "eth0", "capture.pcap" */
    int poll_ms;         /* 0: 1000 */
    pid_t source;        /* > 0: the writing process; once it has exited the console stops
                          * saying LIVE (it is left for the caller to wait for) */
    const char *log_path; /* where the source's messages go (shown when it exits with an
                             error), or NULL */
};

/* Runs the console on the database at db_path until the user quits. live may be NULL
 * (browsing; the database is still checked for changes every second). Needs a terminal on
 * stdin/stdout. Returns 0 on a normal quit, 1 when the database cannot be opened or read,
 * 2 when there is no usable terminal; a message is printed on stderr in both cases. */
int ui_run(const char *db_path, const struct ui_live *live);

#endif
