// Linux calls that Swift's Glibc module does not import.

// renameat2(2) (glibc 2.28 and later), declared here because glibc declares it only
// under _GNU_SOURCE. RENAME_EXCHANGE swaps two existing paths atomically.
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
#define COHORT_AT_FDCWD (-100)
#define COHORT_RENAME_EXCHANGE (1 << 1)

// sched_getaffinity(2): the CPUs this process may run on, as a bit mask of `cpusetsize` bytes.
int sched_getaffinity(int pid, unsigned long cpusetsize, void *mask);
