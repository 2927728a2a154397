// zlib (Debian's zlib1g-dev; part of the macOS SDK): gzip-compressed corpus files.
#include <zlib.h>
