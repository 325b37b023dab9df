/* An fsync for tests of the recorder on the real binary
   (LD_PRELOAD=fsync_shim.so camflow run ...):

   CAMFLOW_FSYNC_FAIL=1       fsync fails with EIO on files whose name holds
                              ".partial" (a disk that cannot make data durable);
   CAMFLOW_FSYNC_GATE=PATH    every fsync waits until PATH exists (a disk that
                              takes as long as the test wants), appending
                              "enter" and "leave" lines to CAMFLOW_FSYNC_LOG.

   Every other call is real. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void note(const char *line) {
    const char *log = getenv("CAMFLOW_FSYNC_LOG");
    if (log == NULL) return;
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return;
    ssize_t ignored = write(fd, line, strlen(line));
    (void)ignored;
    close(fd);
}

static int is_partial(int fd) {
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, target, sizeof target - 1);
    if (length <= 0) return 0;
    target[length] = '\0';
    return strstr(target, ".partial") != NULL;
}

int fsync(int fd) {
    if (getenv("CAMFLOW_FSYNC_FAIL") != NULL && is_partial(fd)) {
        errno = EIO;
        return -1;
    }
    const char *gate = getenv("CAMFLOW_FSYNC_GATE");
    if (gate != NULL) {
        note("enter\n");
        while (access(gate, F_OK) != 0) usleep(10000);
        note("leave\n");
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
