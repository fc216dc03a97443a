/*
 * metrics.c - see metrics.h. The registry is a short list of families,
 * each with a list of series; series are only added (never moved or
 * freed before metrics_reset), so a series' value is updated with an
 * atomic after the lookup and read under the mutex by the renderer.
 * Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/
 */
#include "util/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"
#include "util/xmalloc.h"

#define METRIC_LABEL_MAX 128 /* longer label values are cut */

struct series {
	char v[2][METRIC_LABEL_MAX];
	_Atomic int64_t value;
	struct series *next;
};

struct family_slot {
	const struct metric_family *f;
	struct series *head, **tail;
	struct family_slot *next;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct family_slot *families, **families_tail = &families;

static struct family_slot *slot_find(const struct metric_family *f, bool create)
{
	struct family_slot *fs;

	for (fs = families; fs; fs = fs->next)
		if (fs->f == f)
			return fs;
	if (!create)
		return NULL;
	fs = xcalloc(1, sizeof(*fs));
	fs->f = f;
	fs->tail = &fs->head;
	*families_tail = fs;
	families_tail = &fs->next;
	return fs;
}

/* The series of f for (v1, v2) under the lock, created when create. */
static struct series *series_find(const struct metric_family *f, const char *v1, const char *v2,
				  bool create)
{
	struct family_slot *fs = slot_find(f, create);
	char k[2][METRIC_LABEL_MAX];
	struct series *s;

	if (fs == NULL)
		return NULL;
	str_copy(k[0], f->label[0] && v1 ? v1 : "", sizeof(k[0]));
	str_copy(k[1], f->label[1] && v2 ? v2 : "", sizeof(k[1]));
	for (s = fs->head; s; s = s->next)
		if (strcmp(s->v[0], k[0]) == 0 && strcmp(s->v[1], k[1]) == 0)
			return s;
	if (!create)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	memcpy(s->v, k, sizeof(k));
	atomic_init(&s->value, 0);
	*fs->tail = s;
	fs->tail = &s->next;
	return s;
}

void metrics_add(const struct metric_family *f, const char *v1, const char *v2, uint64_t n)
{
	struct series *s;

	pthread_mutex_lock(&metrics_lock);
	s = series_find(f, v1, v2, true);
	pthread_mutex_unlock(&metrics_lock);
	atomic_fetch_add_explicit(&s->value, (int64_t)n, memory_order_relaxed);
}

void metrics_set(const struct metric_family *f, const char *v1, const char *v2, int64_t v)
{
	struct series *s;

	pthread_mutex_lock(&metrics_lock);
	s = series_find(f, v1, v2, true);
	pthread_mutex_unlock(&metrics_lock);
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

int64_t metrics_get(const struct metric_family *f, const char *v1, const char *v2)
{
	struct series *s;
	int64_t v = 0;

	pthread_mutex_lock(&metrics_lock);
	if ((s = series_find(f, v1, v2, false)) != NULL)
		v = atomic_load_explicit(&s->value, memory_order_relaxed);
	pthread_mutex_unlock(&metrics_lock);
	return v;
}

/* A label value in the exposition format: \\ \" \n escaped. */
static void put_label_value(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			buf_puts(out, "\\\\");
		else if (*v == '"')
			buf_puts(out, "\\\"");
		else if (*v == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *v);
	}
}

static void render_series(struct buf *out, const struct metric_family *f, const struct series *s)
{
	int i, shown = 0;

	buf_puts(out, f->name);
	for (i = 0; i < 2; i++) {
		if (f->label[i] == NULL)
			continue;
		buf_puts(out, shown++ ? "," : "{");
		buf_printf(out, "%s=\"", f->label[i]);
		put_label_value(out, s->v[i]);
		buf_putc(out, '"');
	}
	if (shown)
		buf_putc(out, '}');
	buf_printf(out, " %" PRId64 "\n", atomic_load_explicit(&s->value, memory_order_relaxed));
}

void metrics_render(struct buf *out)
{
	const struct family_slot *fs;
	const struct series *s;

	pthread_mutex_lock(&metrics_lock);
	for (fs = families; fs; fs = fs->next) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fs->f->name, fs->f->help, fs->f->name,
			   fs->f->type == METRIC_COUNTER ? "counter" : "gauge");
		for (s = fs->head; s; s = s->next)
			render_series(out, fs->f, s);
	}
	pthread_mutex_unlock(&metrics_lock);
}

void metrics_reset(void)
{
	struct family_slot *fs, *fn;
	struct series *s, *sn;

	pthread_mutex_lock(&metrics_lock);
	for (fs = families; fs; fs = fn) {
		fn = fs->next;
		for (s = fs->head; s; s = sn) {
			sn = s->next;
			free(s);
		}
		free(fs);
	}
	families = NULL;
	families_tail = &families;
	pthread_mutex_unlock(&metrics_lock);
}
