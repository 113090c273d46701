/* inputs.c — directories on `read`'s command line become the capture files they hold,
 * in name order (the reader merges them in time order afterwards). */
#include "inputs.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A file's start as read by capture_file_kind(). */
enum file_kind { KIND_CAPTURE, KIND_EMPTY, KIND_OTHER, KIND_UNREADABLE };

/* pcap (microsecond and nanosecond, either byte order; Kuznetzov's modified format, which
 * libpcap reads too) or a pcapng Section Header Block. */
static enum file_kind capture_file_kind(const char *path)
{
    static const uint32_t magics[] = { 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1,
                                       0xa1b2cd34, 0x34cdb2a1, 0x0a0d0d0a };
    unsigned char head[4];
    FILE *file = fopen(path, "rb");
    if (!file)   /* errno says why: a capture we may not read is no "other file" */
        return KIND_UNREADABLE;
    size_t got = fread(head, 1, sizeof head, file);
    fclose(file);
    if (got == 0)
        return KIND_EMPTY;
    if (got < sizeof head)
        return KIND_OTHER;
    uint32_t magic = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
                     (uint32_t)head[2] << 8 | head[3];
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (magic == magics[i])
            return KIND_CAPTURE;
    return KIND_OTHER;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool list_push(const char ***items, int *count, int *cap, const char *item)
{
    if (*count == *cap) {
        int next = *cap ? *cap * 2 : 16;
        const char **grown = realloc(*items, (size_t)next * sizeof **items);
        if (!grown)
            return false;
        *items = grown;
        *cap = next;
    }
    (*items)[(*count)++] = item;
    return true;
}

/* The captures directly inside dir, appended to inputs (their paths owned by it). */
static bool expand_directory(struct read_inputs *inputs, int *cap, int *owned_cap,
                             const char *dir, bool quiet)
{
    DIR *listing = opendir(dir);
    if (!listing) {
        fprintf(stderr, "mailtap: warning: %s: cannot list the directory: %s\n", dir,
                strerror(errno));
        inputs->problem = true;
        return true;
    }
    int first = inputs->owned_count, others = 0, subdirectories = 0;
    char *other_example = NULL;
    bool ok = true;
    struct dirent *entry;
    while (ok && (entry = readdir(listing))) {
        if (entry->d_name[0] == '.')
            continue;
        size_t dir_len = strlen(dir);
        bool slash = dir_len > 0 && dir[dir_len - 1] == '/';
        size_t size = dir_len + 1 + strlen(entry->d_name) + 1;
        char *path = malloc(size);
        if (!path) {
            ok = false;
            break;
        }
        snprintf(path, size, "%s%s%s", dir, slash ? "" : "/", entry->d_name);
        struct stat st;
        bool exists = stat(path, &st) == 0;
        if (exists && S_ISDIR(st.st_mode)) {
            subdirectories++;
            free(path);
            continue;
        }
        enum file_kind kind = exists && S_ISREG(st.st_mode) ? capture_file_kind(path)
                                                            : KIND_OTHER;
        if (kind == KIND_UNREADABLE) {
            /* as for a file named on the command line: said, and the exit status tells (a
             * daily read must not miss a day's capture owned by another user in silence) */
            fprintf(stderr, "mailtap: warning: %s: cannot read capture: %s\n", path,
                    strerror(errno));
            inputs->problem = true;
            free(path);
            continue;
        }
        if (kind != KIND_CAPTURE) {
            others += kind == KIND_OTHER;
            if (kind == KIND_OTHER && !other_example)
                other_example = path;
            else
                free(path);
            continue;
        }
        if (inputs->owned_count == *owned_cap) {
            int next = *owned_cap ? *owned_cap * 2 : 16;
            char **grown = realloc(inputs->owned, (size_t)next * sizeof *grown);
            if (!grown) {
                free(path);
                ok = false;
                break;
            }
            inputs->owned = grown;
            *owned_cap = next;
        }
        inputs->owned[inputs->owned_count++] = path;
    }
    closedir(listing);
    int found = inputs->owned_count - first;
    if (found > 1)
        qsort(inputs->owned + first, (size_t)found, sizeof *inputs->owned, by_name);
    for (int i = first; ok && i < inputs->owned_count; i++)
        ok = list_push(&inputs->files, &inputs->count, cap, inputs->owned[i]);
    if (!ok) {
        free(other_example);
        fprintf(stderr, "mailtap: out of memory listing %s\n", dir);
        return false;
    }
    if (found == 0) {
        fprintf(stderr, "mailtap: warning: %s: no pcap or pcapng capture in the directory%s%s\n",
                dir, others ? " (its files are not captures)" : "",
                subdirectories ? " (subdirectories are not read)" : "");
        inputs->problem = true;
    } else if (others && !quiet) {
        fprintf(stderr, "mailtap: note: %s: %d file%s not a pcap or pcapng capture, not read"
                " (%s%s)\n", dir, others, others == 1 ? " is" : "s are", other_example,
                others > 1 ? ", ..." : "");
    }
    free(other_example);
    return true;
}

bool inputs_expand(struct read_inputs *inputs, char **args, int arg_count, bool quiet)
{
    *inputs = (struct read_inputs){ 0 };
    int cap = 0, owned_cap = 0;
    for (int i = 0; i < arg_count; i++) {
        struct stat st;
        bool directory = strcmp(args[i], "-") != 0 && stat(args[i], &st) == 0 &&
                         S_ISDIR(st.st_mode);
        bool ok = directory ? expand_directory(inputs, &cap, &owned_cap, args[i], quiet)
                            : list_push(&inputs->files, &inputs->count, &cap, args[i]);
        if (!ok) {
            if (!directory)
                fprintf(stderr, "mailtap: out of memory\n");
            inputs_free(inputs);
            return false;
        }
    }
    return true;
}

void inputs_free(struct read_inputs *inputs)
{
    for (int i = 0; i < inputs->owned_count; i++)
        free(inputs->owned[i]);
    free(inputs->owned);
    free(inputs->files);
    *inputs = (struct read_inputs){ 0 };
}
