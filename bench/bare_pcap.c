/* bare_pcap.c — baselines below any decoding: "read FILE" reads the file with read(2)
 * in 1 MiB blocks (the page-cache floor); "pcap FILE" runs a bare libpcap loop that
 * touches each packet's length and first byte. Prints one JSON line of what it saw. */
#include "capture_file.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    enum { BLOCK = 1 << 20 };
    char *buf = malloc(BLOCK);
    if (!buf)
        return 1;
    uint64_t bytes = 0, check = 0;
    ssize_t n;
    while ((n = read(fd, buf, BLOCK)) > 0) {
        bytes += (uint64_t)n;
        check += (unsigned char)buf[n - 1];
    }
    close(fd);
    free(buf);
    if (n < 0) {
        perror(path);
        return 1;
    }
    printf("{\"bytes\": %llu, \"check\": %llu}\n", (unsigned long long)bytes,
           (unsigned long long)check);
    return 0;
}

static int pcap_loop_file(const char *path)
{
    pcap_t *p = open_capture_file(path);
    if (!p)
        return 1;
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t packets = 0, bytes = 0, check = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        packets++;
        bytes += h->caplen;
        if (h->caplen)
            check += data[h->caplen - 1];
    }
    if (rc == PCAP_ERROR)
        fprintf(stderr, "%s: %s\n", path, pcap_geterr(p));
    pcap_close(p);
    printf("{\"packets\": %llu, \"bytes\": %llu, \"check\": %llu}\n", (unsigned long long)packets,
           (unsigned long long)bytes, (unsigned long long)check);
    return rc == PCAP_ERROR;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "read"))
        return read_file(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "pcap"))
        return pcap_loop_file(argv[2]);
    fprintf(stderr, "usage: bare_pcap read|pcap FILE\n");
    return 2;
}
