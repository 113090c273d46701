/* flow.c — address formatting. */
#include "flow.h"

#include <arpa/inet.h>

const char *ip_address_format(const struct ip_address *address, char *buf, unsigned size)
{
    const char *text = inet_ntop(address->family == 6 ? AF_INET6 : AF_INET, address->bytes,
                                 buf, size);
    if (!text && size > 0)
        buf[0] = '\0';
    return buf;
}
