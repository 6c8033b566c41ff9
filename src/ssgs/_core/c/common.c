#include "ssgs_common.h"
#include "ssgs_internal.h"

int ssgs_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int ssgs_max_threads(void)
{
    return ssgs_threads(0);
}
