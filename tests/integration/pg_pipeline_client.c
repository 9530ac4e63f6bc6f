/* interlock-pg-pipeline: a libpq client in pipeline mode, the way the libpq manual says a
 * non-blocking one should be written, for tests/integration/pg_pipeline_test.cc.
 *
 *   interlock-pg-pipeline CONNINFO COUNT BYTES [SQL [PAUSE_MS]]
 *
 * Sends COUNT statements (default SQL: SELECT $1::int, $2::text, with $2 BYTES long)
 * before reading any result: the socket is non-blocking, and while libpq cannot flush it
 * waits for either readable or writable and, when readable, takes in what the server has
 * answered so far (PQconsumeInput) — so the server's results arrive while it still
 * writes. Then a Sync, PAUSE_MS of sleep (a slow consumer: the results pile up), and
 * every result is read and checked: in order ($1 comes back), its second column a
 * non-empty multiple of BYTES long. Prints {"results":N,"seconds":S} (flat JSON, as interlock-probe
 * does) and exits 0 when all came back; 1 with a reason on stderr otherwise. A stall is
 * the caller's to time out.
 */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(PGconn *conn, const char *what)
{
	fprintf(stderr, "pg-pipeline: %s: %s", what, conn ? PQerrorMessage(conn) : "\n");
	return 1;
}

/* Waits until the socket is readable or (when `want_write`) writable; takes in what is
 * readable. 0, or -1 on error. */
static int wait_socket(PGconn *conn, int want_write)
{
	struct pollfd p = { .fd = PQsocket(conn), .events = POLLIN | (want_write ? POLLOUT : 0) };

	if (poll(&p, 1, -1) < 0)
		return -1;
	if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(conn))
		return -1;
	return 0;
}

/* Flushes libpq's output buffer as far as the socket takes it now (0), or completely
 * when `all` (waiting as above); -1 on error. */
static int flush(PGconn *conn, int all)
{
	int r;

	while ((r = PQflush(conn)) == 1) {
		if (!all)
			return 0;
		if (wait_socket(conn, 1))
			return -1;
	}
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: interlock-pg-pipeline CONNINFO COUNT BYTES [SQL [PAUSE_MS]]\n");
		return 2;
	}
	const long count = atol(argv[2]);
	const long bytes = atol(argv[3]);
	const char *sql = argc > 4 ? argv[4] : "SELECT $1::int, $2::text";
	const long pause_ms = argc > 5 ? atol(argv[5]) : 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	PGconn *conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
		return fail(conn, "connect");
	if (PQsetnonblocking(conn, 1) || !PQenterPipelineMode(conn))
		return fail(conn, "pipeline mode");

	char *payload = malloc(bytes + 1);
	if (!payload)
		return fail(NULL, "out of memory");
	memset(payload, 'p', bytes);
	payload[bytes] = '\0';
	char number[24];
	for (long i = 0; i < count; i++) {
		snprintf(number, sizeof number, "%ld", i);
		const char *values[2] = { number, payload };
		if (!PQsendQueryParams(conn, sql, 2, NULL, values, NULL, NULL, 0))
			return fail(conn, "send");
		if (flush(conn, 0))
			return fail(conn, "flush");
	}
	if (!PQpipelineSync(conn) || flush(conn, 1))
		return fail(conn, "sync");
	if (pause_ms > 0) {
		struct timespec pause = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
		nanosleep(&pause, NULL);
	}

	long results = 0;
	for (;;) {
		while (PQisBusy(conn))
			if (wait_socket(conn, 0))
				return fail(conn, "read");
		PGresult *res = PQgetResult(conn);
		if (!res)
			continue; /* the end of one statement's results */
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (st != PGRES_TUPLES_OK)
			return fail(conn, "result");
		if (PQntuples(res) != 1 || atol(PQgetvalue(res, 0, 0)) != results ||
		    PQgetlength(res, 0, 1) == 0 || PQgetlength(res, 0, 1) % bytes != 0) {
			fprintf(stderr, "pg-pipeline: result %ld out of order or truncated\n", results);
			return 1;
		}
		results++;
		PQclear(res);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("{\"results\":%ld,\"seconds\":%.2f}\n", results,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	PQfinish(conn);
	free(payload);
	return results == count ? 0 : 1;
}
