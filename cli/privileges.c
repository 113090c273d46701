/* privileges.c — setgroups/setgid/setuid with CAP_NET_RAW kept (prctl KEEPCAPS + capset). */
#include "cli/privileges.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *privileges_default_user(void)
{
    return getpwnam("mailtap") ? "mailtap" : "nobody";
}

/* Permitted and effective sets become CAP_NET_RAW alone (raw syscall: no libcap needed). */
static int keep_only_net_raw(void)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].permitted = data[0].effective = 1u << CAP_NET_RAW;
    return (int)syscall(SYS_capset, &header, data);
}

int privileges_drop(const char *user, const char *const *owned_files, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (geteuid() != 0 || !user || strcmp(user, "root") == 0)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "-Z %s: no such user%s%s", user, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        return -1;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (uid == 0) {
        snprintf(err, errlen, "-Z %s: that user is root", user);
        return -1;
    }
    for (size_t i = 0; owned_files && owned_files[i]; i++)
        if (chown(owned_files[i], uid, gid) < 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot give %s to %s: %s", owned_files[i], user, strerror(errno));
            return -1;
        }
    int death_signal = 0;   /* the kernel clears it on a change of credentials */
    prctl(PR_GET_PDEATHSIG, &death_signal, 0L, 0L, 0L);
    if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0 || setgroups(1, &gid) < 0 ||
        setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        snprintf(err, errlen, "cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    if (death_signal) {   /* a --ui decoder or a worker must still die with its parent */
        prctl(PR_SET_PDEATHSIG, (long)death_signal, 0L, 0L, 0L);
        if (getppid() == 1)
            raise(death_signal);   /* the parent went during the drop */
    }
    prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
    if (keep_only_net_raw() < 0) {
        snprintf(err, errlen, "dropped to %s, but cannot keep CAP_NET_RAW (%s): a vanished "
                 "interface will not be reopened", user, strerror(errno));
        return 0;   /* safe (less privilege, not more): warn through err, go on */
    }
    if (setuid(0) == 0) {   /* paranoia: the drop must be irreversible */
        snprintf(err, errlen, "privileges could be regained after dropping to %s", user);
        return -1;
    }
    return 0;
}
