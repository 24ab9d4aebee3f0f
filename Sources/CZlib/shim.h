// zlib's gz* file API: reads .gz files and, transparently, uncompressed ones.
#include <zlib.h>
