/*
 * minihttpd.h: a tiny HTTP/1.1 server for the client tests, forked from the
 * test program, on a Unix socket or a loopback TCP port.  The parent steers
 * it through shared memory (what to answer next) and reads back how many
 * requests it saw and the last request's path and body, so tests can count
 * retries and check what the client sent.  Not a general server: one
 * connection at a time, Content-Length bodies only.
 */
#ifndef DSTACK_MINIHTTPD_H
#define DSTACK_MINIHTTPD_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

typedef enum MiniMode
{
	MINI_REPLY,					/* answer status + body from the shared struct */
	MINI_HANG,					/* read the request, never answer */
	MINI_FAIL_FIRST,			/* 500 to the first `fail_n` requests, then MINI_REPLY */
	MINI_BIG					/* 200 with a body of `big` bytes */
} MiniMode;

typedef struct MiniShared
{
	volatile int mode;
	volatile int status;
	volatile int fail_n;
	volatile size_t big;
	volatile int count;			/* requests seen */
	volatile int keepalive;		/* MINI_REPLY answers keep the connection open */
	volatile int conns;			/* connections accepted */
	char		body[8192];		/* reply body for MINI_REPLY */
	char		last_path[256];
	char		last_method[16];
	char		last_body[8192];
} MiniShared;

typedef struct Mini
{
	pid_t		pid;
	int			port;			/* TCP, or 0 */
	char		path[108];		/* Unix socket, or "" */
	MiniShared *sh;
} Mini;

/* Read one request (headers, then Content-Length bytes of body) into sh. */
static int
mini_read_request(int c, MiniShared *sh)
{
	char		buf[16384];
	size_t		n = 0;
	char	   *hdr_end = NULL;
	long		clen = 0;
	char	   *p;

	while (hdr_end == NULL)
	{
		ssize_t		r = read(c, buf + n, sizeof(buf) - 1 - n);

		if (r <= 0)
			return -1;
		n += (size_t) r;
		buf[n] = '\0';
		hdr_end = strstr(buf, "\r\n\r\n");
		if (n >= sizeof(buf) - 1)
			return -1;
	}
	sscanf(buf, "%15s %255s", sh->last_method, sh->last_path);
	p = strcasestr(buf, "\r\nContent-Length:");
	if (p != NULL && p < hdr_end)
		clen = strtol(p + 17, NULL, 10);
	while ((long) (n - (size_t) (hdr_end + 4 - buf)) < clen && n < sizeof(buf) - 1)
	{
		ssize_t		r = read(c, buf + n, sizeof(buf) - 1 - n);

		if (r <= 0)
			return -1;
		n += (size_t) r;
		buf[n] = '\0';
	}
	snprintf(sh->last_body, sizeof(sh->last_body), "%s", hdr_end + 4);
	return 0;
}

/*
 * Write all bytes; a client that hung up is not the server's problem.
 * MSG_NOSIGNAL: a client that refuses an oversized body closes the socket
 * mid-write, and SIGPIPE would kill the server for every later test.
 */
static void
mini_write_all(int c, const char *p, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = send(c, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t) w;
	}
}

/* Answer one request according to the mode the parent set. */
static void
mini_answer(int c, MiniShared *sh)
{
	char		head[256];
	int			status = sh->status;
	const char *body = sh->body;
	size_t		blen;

	if (mini_read_request(c, sh) != 0)
		return;
	sh->count++;
	if (sh->mode == MINI_HANG)
	{
		sleep(60);
		return;
	}
	if (sh->mode == MINI_FAIL_FIRST && sh->count <= sh->fail_n)
	{
		status = 500;
		body = "{\"error\":\"internal\"}";
	}
	if (sh->mode == MINI_BIG)
	{
		size_t		left = sh->big;
		char		chunk[4096];

		memset(chunk, 'x', sizeof(chunk));
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Connection: close\r\nContent-Length: %zu\r\n\r\n", left);
		mini_write_all(c, head, strlen(head));
		while (left > 0)
		{
			size_t		k = left < sizeof(chunk) ? left : sizeof(chunk);

			mini_write_all(c, chunk, k);
			left -= k;
		}
		return;
	}
	blen = strlen(body);
	snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Connection: %s\r\nContent-Length: %zu\r\n\r\n", status,
			 sh->keepalive ? "keep-alive" : "close", blen);
	mini_write_all(c, head, strlen(head));
	mini_write_all(c, body, blen);
}

/* Is there more to read on c (the client kept the connection and sent another request)? */
static int
mini_peek(int c)
{
	char		b;

	return recv(c, &b, 1, MSG_PEEK) == 1;
}

/*
 * Start the server: unix_path non-NULL for a Unix socket, else a free
 * loopback TCP port (reported in m->port).  Returns 0 on success.
 */
static int
mini_start(Mini *m, const char *unix_path)
{
	int			s;

	memset(m, 0, sizeof(*m));
	m->sh = mmap(NULL, sizeof(MiniShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->sh == MAP_FAILED)
		return -1;
	memset(m->sh, 0, sizeof(MiniShared));
	m->sh->status = 200;
	strcpy(m->sh->body, "{}");
	if (unix_path != NULL)
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		snprintf(m->path, sizeof(m->path), "%s", unix_path);
		unlink(unix_path);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", unix_path);
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *) &sa, sizeof(sa)) != 0)
			return -1;
	}
	else
	{
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t	sl = sizeof(sa);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
			getsockname(s, (struct sockaddr *) &sa, &sl) != 0)
			return -1;
		m->port = ntohs(sa.sin_port);
	}
	if (listen(s, 16) != 0)
		return -1;
	fflush(stdout);
	m->pid = fork();
	if (m->pid < 0)
		return -1;
	if (m->pid == 0)
	{
		for (;;)
		{
			int			c = accept(s, NULL, NULL);

			if (c < 0)
				continue;
			m->sh->conns++;
			do
				mini_answer(c, m->sh);
			while (m->sh->keepalive && m->sh->mode == MINI_REPLY && mini_peek(c));
			close(c);
		}
	}
	close(s);
	return 0;
}

/* Stop the child we forked (by its pid) and remove its socket. */
static void
mini_stop(Mini *m)
{
	if (m->pid > 0)
	{
		kill(m->pid, SIGKILL);
		waitpid(m->pid, NULL, 0);
	}
	if (m->path[0])
		unlink(m->path);
	if (m->sh != NULL && m->sh != MAP_FAILED)
		munmap(m->sh, sizeof(MiniShared));
	memset(m, 0, sizeof(*m));
}

/* Set what the next requests get. */
static void
mini_set(Mini *m, MiniMode mode, int status, const char *body)
{
	m->sh->mode = mode;
	m->sh->status = status;
	m->sh->count = 0;
	snprintf(m->sh->body, sizeof(m->sh->body), "%s", body ? body : "{}");
}

#endif							/* DSTACK_MINIHTTPD_H */
