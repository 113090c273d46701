/* inputs.h — the captures `read` takes from its command line: a directory stands for the
 * capture files directly inside it, so that `mailtap read /var/captures` (daily, with the
 * read log skipping what was taken in before) needs no glob that outgrows the command line. */
#ifndef MAILTAP_INPUTS_H
#define MAILTAP_INPUTS_H

#include <stdbool.h>

struct read_inputs {
    const char **files;   /* the arguments, each directory replaced by its captures */
    int count;
    char **owned;         /* the paths made for directory entries, freed with the list */
    int owned_count;
    bool problem;         /* a directory could not be listed or held no capture */
};

/* Expands args[0..arg_count). Inside a directory (not its subdirectories), a regular file
 * whose name does not start with '.' is taken when its first bytes are a pcap or pcapng
 * header; the others are counted in a note (unless quiet), empty files (a capture being
 * started) silently. A directory that cannot be listed or holds no capture is a warning
 * and sets problem. Other arguments pass as they are (a missing file is the reader's to
 * report). False when out of memory (message printed). */
bool inputs_expand(struct read_inputs *inputs, char **args, int arg_count, bool quiet);

void inputs_free(struct read_inputs *inputs);

#endif
