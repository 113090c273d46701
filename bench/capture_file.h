/* capture_file.h — how the bare loops open a capture: as mailtap does (capture/source.c),
 * through a 256 KiB page-aligned stdio buffer, so that the floors they measure read the
 * file the same way. One file at a time per process (the buffer is static). */
#ifndef MAILTAP_BENCH_CAPTURE_FILE_H
#define MAILTAP_BENCH_CAPTURE_FILE_H

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>

/* The open capture, or NULL after a message on stderr. */
static pcap_t *open_capture_file(const char *path)
{
    static _Alignas(4096) char buffer[256 * 1024];
    char errbuf[PCAP_ERRBUF_SIZE];
    FILE *input = fopen(path, "rb");
    if (!input) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    setvbuf(input, buffer, _IOFBF, sizeof buffer);
    pcap_t *capture = pcap_fopen_offline(input, errbuf);
    if (!capture) {
        fprintf(stderr, "%s: %s\n", path, errbuf);
        fclose(input);
    }
    return capture;
}

#endif
