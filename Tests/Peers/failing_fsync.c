/* Makes fsync fail with EIO on files whose name holds ".partial", so the
   recorder's handling of a failed fsync can be tested on the real binary
   (LD_PRELOAD=failing_fsync.so camflow run ...). Every other call is real. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fsync(int fd) {
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, target, sizeof target - 1);
    if (length > 0) {
        target[length] = '\0';
        if (strstr(target, ".partial") != NULL) {
            errno = EIO;
            return -1;
        }
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
