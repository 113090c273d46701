/* privileges.h — dropping root after the capture interface and the database are open,
 * as tcpdump does with -Z: a sensor parses hostile bytes from the wire all day. */
#ifndef MAILTAP_PRIVILEGES_H
#define MAILTAP_PRIVILEGES_H

#include <stddef.h>

/* The user a root process drops to when -Z is not given: "mailtap" when that account
 * exists, else "nobody". */
const char *privileges_default_user(void);

/* When running as root (euid 0) and user is not "root": hands the files in owned_files
 * (NULL-terminated; those that do not exist are skipped) to the user, then becomes that
 * user (supplementary groups, gid, uid), keeping only CAP_NET_RAW so that a vanished
 * interface can be reopened. Not root: nothing to do. Returns 0, or -1 with a message in
 * err (the process must then stop: it is not safe to go on as root by accident). */
int privileges_drop(const char *user, const char *const *owned_files, char *err, size_t errlen);

#endif
