/* localnets.c — CIDR parsing and matching for IPv4 and IPv6. */
#include "cli/localnets.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

void localnets_defaults(struct localnets *nets)
{
    static const char *const defaults[] = {
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
        "::1/128", "fc00::/7", "fe80::/10",
    };
    nets->count = 0;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        localnets_add(nets, defaults[i]);
}

bool localnets_add(struct localnets *nets, const char *cidr)
{
    char text[64];
    if (nets->count >= LOCALNETS_MAX || strlen(cidr) >= sizeof text)
        return false;
    strcpy(text, cidr);
    char *slash = strchr(text, '/');
    int prefix = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        long value = strtol(slash + 1, &end, 10);
        if (*end != '\0' || end == slash + 1 || value < 0 || value > 128)
            return false;
        prefix = (int)value;
    }
    struct localnet net;
    memset(&net, 0, sizeof net);
    if (inet_pton(AF_INET, text, net.base.bytes) == 1) {
        net.base.family = 4;
        if (prefix > 32)
            return false;
        net.prefix = prefix < 0 ? 32 : prefix;
    } else if (inet_pton(AF_INET6, text, net.base.bytes) == 1) {
        net.base.family = 6;
        net.prefix = prefix < 0 ? 128 : prefix;
    } else {
        return false;
    }
    nets->nets[nets->count++] = net;
    return true;
}

static bool prefix_matches(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool localnets_contains(const struct localnets *nets, const struct ip_address *address)
{
    for (int i = 0; i < nets->count; i++) {
        const struct localnet *net = &nets->nets[i];
        if (net->base.family == address->family &&
            prefix_matches(net->base.bytes, address->bytes, net->prefix))
            return true;
    }
    return false;
}
