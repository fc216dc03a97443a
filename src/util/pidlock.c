/* pidlock.c - see pidlock.h. */
#include "util/pidlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>


/* The pid the holder wrote, 0 when the file has none (yet). */
static pid_t read_holder(int fd)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	long pid;
	char *end;

	if (n <= 0)
		return 0;
	text[n] = '\0';
	errno = 0;
	pid = strtol(text, &end, 10);
	if (errno != 0 || end == text || pid <= 0)
		return 0;
	return (pid_t)pid;
}

int pidlock_acquire(const char *path, pid_t *holder, char *err, size_t errsz)
{
	char text[32];
	struct stat st;
	int fd, n;

	*holder = 0;
	/* The directory may belong to the unprivileged user: never follow a
	 * symlink or block on a FIFO planted there, only lock a plain file. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0) {
		snprintf(err, errsz, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s is not a regular file", path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			*holder = read_holder(fd);
			snprintf(err, errsz, "%s is locked by another process", path);
		} else {
			snprintf(err, errsz, "flock %s: %s", path, strerror(e));
		}
		close(fd);
		errno = e;
		return -1;
	}
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
		snprintf(err, errsz, "write %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

