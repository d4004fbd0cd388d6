// Grow-only scratch buffers kept per thread and freed when the thread ends: after the first calls
// of a shape on a thread, the kernels that use them allocate nothing.
#include <pthread.h>
#include <stdlib.h>
#include "internal.h"

typedef struct {
    float *data;
    size_t capacity;
} dk_buffer;

static pthread_key_t dk_scratch_key;
static pthread_once_t dk_scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local dk_buffer dk_scratch_buffers[DK_SCRATCH_SLOTS];

static void dk_scratch_free(void *p) {
    dk_buffer *buffers = p;
    for (int i = 0; i < DK_SCRATCH_SLOTS; i++) {
        free(buffers[i].data);
        buffers[i].data = 0;
        buffers[i].capacity = 0;
    }
}

static void dk_scratch_make_key(void) { pthread_key_create(&dk_scratch_key, dk_scratch_free); }

float *dk_scratch(int slot, size_t count) {
    dk_buffer *b = &dk_scratch_buffers[slot];
    if (b->data && count <= b->capacity) return b->data;
    pthread_once(&dk_scratch_once, dk_scratch_make_key);
    free(b->data);
    size_t bytes = ((count * sizeof(float)) + 63) & ~(size_t)63;
    b->data = aligned_alloc(64, bytes ? bytes : 64);
    b->capacity = b->data ? count : 0;
    pthread_setspecific(dk_scratch_key, dk_scratch_buffers);
    return b->data;
}
