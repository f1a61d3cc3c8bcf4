/* offload.h - the offload pool's internal interface (for tests and the
 * dump); the API is weft_offload in weft/io.h. */
#ifndef WEFT_OFFLOAD_H
#define WEFT_OFFLOAD_H

/* Pool threads alive now (started and not yet exited). */
int weft__offload_threads(void);
/* The most fn calls that ever ran at once. */
int weft__offload_peak(void);
/* The bound on pool threads (WEFT_OFFLOAD_THREADS, read at first use). */
int weft__offload_max(void);

#endif
