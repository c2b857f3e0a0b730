/*
 * The recorder's entry points into LAME, compiled with it to WebAssembly by build.sh.
 * One call of rec_open per recording: 8 kHz in and out, CBR, true stereo (each party keeps its own channel) or
 * mono, the given LAME quality (0 best/slowest .. 9), no bit reservoir (every frame stands alone, so a stream cut
 * at a frame boundary is whole: the recorder does that when an encoder worker dies), no VBR/ID3 tags (the recorder
 * writes its own Info frame). LAME's messages are dropped: the module has no stdio.
 */
#include <stdarg.h>
#include <stdlib.h>
#include "lame.h"

static void quiet(const char *format, va_list ap) {
  (void)format;
  (void)ap;
}

__attribute__((export_name("rec_open")))
lame_t rec_open(int channels, int kbps, int quality) {
  lame_t g = lame_init();
  if (!g) return 0;
  lame_set_errorf(g, quiet);
  lame_set_debugf(g, quiet);
  lame_set_msgf(g, quiet);
  lame_set_num_channels(g, channels);
  lame_set_in_samplerate(g, 8000);
  lame_set_out_samplerate(g, 8000);
  lame_set_mode(g, channels == 2 ? STEREO : MONO);
  lame_set_VBR(g, vbr_off);
  lame_set_brate(g, kbps);
  lame_set_quality(g, quality);
  lame_set_disable_reservoir(g, 1);
  lame_set_bWriteVbrTag(g, 0);
  lame_set_write_id3tag_automatic(g, 0);
  if (lame_init_params(g) < 0) {
    lame_close(g);
    return 0;
  }
  return g;
}

/* 16-bit planar input; `right` is ignored for mono. Returns the MP3 bytes written to `out`, or < 0 (LAME error). */
__attribute__((export_name("rec_encode")))
int rec_encode(lame_t g, short *left, short *right, int samples, unsigned char *out, int out_size) {
  return lame_encode_buffer(g, left, right, samples, out, out_size);
}

__attribute__((export_name("rec_flush")))
int rec_flush(lame_t g, unsigned char *out, int out_size) {
  return lame_encode_flush(g, out, out_size);
}

__attribute__((export_name("rec_close")))
void rec_close(lame_t g) {
  lame_close(g);
}

__attribute__((export_name("rec_alloc")))
void *rec_alloc(int bytes) {
  return malloc(bytes);
}

__attribute__((export_name("rec_free")))
void rec_free(void *p) {
  free(p);
}
