// OpenBLAS from Debian's libopenblas-dev (cblas.h lives in the multiarch include directory).
#include <cblas.h>
