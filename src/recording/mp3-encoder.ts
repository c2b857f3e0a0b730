import { Mp3Encoder as LameJs } from '@breezystack/lamejs';

/** One MP3 stream. Input is planar 16-bit PCM at 8 kHz, one array per channel. */
export interface Mp3Encoder {
  encode(channels: Int16Array[]): Uint8Array;
  flush(): Uint8Array;
}

export interface Mp3Format {
  channels: 1 | 2;
  kbps: 8 | 16 | 32;
}

/** LAME in pure JS (`@breezystack/lamejs`): CBR, true stereo (not joint: the parties stay separable). */
export function createLameJsEncoder(format: Mp3Format): Mp3Encoder {
  const enc = new LameJs(format.channels, 8000, format.kbps);
  return {
    encode(ch) {
      return format.channels === 2 ? enc.encodeBuffer(ch[0], ch[1]) : enc.encodeBuffer(ch[0]);
    },
    flush() {
      return enc.flush();
    },
  };
}
