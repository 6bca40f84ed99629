//! Audio of a stage (`audio: {codec: aac|opus}`): AAC or Opus decoded, resampled where
//! the encoder needs (Opus takes 48 kHz), re-chunked into the encoder's fixed frames and
//! encoded to AAC-LC or Opus at the configured bit rate.

use crate::codec::aac::AudioSpecificConfig;
use crate::config::transcode::AudioCodec;
use crate::core::{Codec, Payload, Track, Unit};
use bytes::Bytes;
use ffmpeg_next as ff;

pub struct AudioTranscoder {
    /// ADTS framing for AAC input (the decoder then needs no extradata).
    adts: Option<AudioSpecificConfig>,
    decoder: ff::decoder::Audio,
    encoder: ff::encoder::Audio,
    layout: ff::ChannelLayout,
    /// The encoder's sample format: planar f32 (AAC) or interleaved f32 (libopus).
    format: ff::format::Sample,
    /// Decoded audio at another rate than the encoder's goes through this first.
    resampler: Option<ff::software::resampling::Context>,
    in_rate: u32,
    rate: u32,
    /// Decoded samples waiting for a full encoder frame, per channel.
    fifo: Vec<Vec<f32>>,
    /// Presentation time of `fifo`'s first sample (input clock = sample rate).
    fifo_pts: Option<i64>,
    frame_size: usize,
    decoded: ff::frame::Audio,
    packet: ff::Packet,
    pub track: Track,
}

impl AudioTranscoder {
    /// For an AAC or Opus input track, to `codec` (AAC or Opus); `Err` says why this
    /// track can't be re-encoded.
    pub fn new(input: &Track, codec: AudioCodec, bitrate: u64) -> Result<AudioTranscoder, String> {
        let (id, adts, in_rate, channels) = match &input.codec {
            Codec::Aac { config, .. } => {
                let asc = AudioSpecificConfig::parse(config).map_err(|e| e.to_string())?;
                (ff::codec::Id::AAC, Some(asc), asc.sample_rate, asc.channels)
            }
            // FFmpeg's Opus decoder assumes stereo at 48 kHz without an OpusHead.
            Codec::Opus { .. } => (ff::codec::Id::OPUS, None, 48000, 2),
            c => return Err(format!("{} audio can't be re-encoded", c.name())),
        };
        let planar = ff::format::Sample::F32(ff::format::sample::Type::Planar);
        let (name, rate, channels, format) = match codec {
            // Opus: 48 kHz, mono or stereo (more channels would need a mapping family).
            AudioCodec::Opus => (
                "libopus",
                48000,
                channels.clamp(1, 2),
                ff::format::Sample::F32(ff::format::sample::Type::Packed),
            ),
            _ => ("aac", in_rate, channels.clamp(1, 8), planar),
        };
        let dec = ff::decoder::find(id).ok_or("no decoder in this FFmpeg")?;
        let decoder = ff::codec::context::Context::new_with_codec(dec)
            .decoder()
            .audio()
            .map_err(|e| format!("audio decoder: {e}"))?;
        let enc = ff::encoder::find_by_name(name)
            .ok_or_else(|| format!("no {name} encoder in this FFmpeg"))?;
        let mut e = ff::codec::context::Context::new_with_codec(enc)
            .encoder()
            .audio()
            .map_err(|e| e.to_string())?;
        let layout = ff::ChannelLayout::default(i32::from(channels));
        e.set_rate(rate as i32);
        e.set_channel_layout(layout);
        e.set_format(format);
        e.set_bit_rate(bitrate as usize);
        e.set_time_base((1, rate as i32));
        let encoder = e.open_as(enc).map_err(|e| format!("{name} encoder: {e}"))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        let resampler = match in_rate == rate {
            true => None,
            false => Some(
                ff::software::resampling::Context::get(
                    planar, layout, in_rate, planar, layout, rate,
                )
                .map_err(|e| format!("resampling {in_rate} Hz to {rate} Hz: {e}"))?,
            ),
        };
        let track = match codec {
            AudioCodec::Opus => Track::new(Codec::Opus { channels }, 48000),
            _ => {
                let config = AudioSpecificConfig {
                    object_type: 2,
                    sample_rate: rate,
                    channels,
                }
                .to_bytes()
                .ok_or_else(|| format!("AAC can't describe {rate} Hz"))?;
                Track::new(
                    Codec::Aac {
                        config: Bytes::copy_from_slice(&config),
                        sample_rate: rate,
                        channels,
                    },
                    rate,
                )
            }
        };
        Ok(AudioTranscoder {
            adts,
            decoder,
            encoder,
            layout,
            format,
            resampler,
            in_rate,
            rate,
            fifo: vec![Vec::new(); usize::from(channels)],
            fifo_pts: None,
            frame_size,
            decoded: ff::frame::Audio::empty(),
            packet: ff::Packet::empty(),
            track,
        })
    }

    /// Decodes `unit` and returns the AAC units that became ready (track index 0;
    /// the caller sets its own).
    pub fn push(&mut self, unit: &Unit) -> Result<Vec<Unit>, String> {
        let Payload::Frame(data) = &unit.payload else {
            return Ok(Vec::new());
        };
        let mut bytes = Vec::with_capacity(data.len() + 7);
        if let Some(asc) = &self.adts {
            bytes.extend_from_slice(&asc.adts_header(data.len()).ok_or("ADTS can't frame it")?);
        }
        bytes.extend_from_slice(data);
        let mut pkt = ff::Packet::copy(&bytes);
        pkt.set_pts(Some(unit.pts));
        self.decoder
            .send_packet(&pkt)
            .map_err(|e| format!("audio decoding: {e}"))?;
        let mut out = Vec::new();
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            if self.decoded.format() != ff::format::Sample::F32(ff::format::sample::Type::Planar) {
                return Err(format!(
                    "decoded audio is {:?}, not planar f32",
                    self.decoded.format()
                ));
            }
            if self.fifo_pts.is_none() {
                // The first sample's time, in the encoder's clock.
                let pts = self.decoded.pts().unwrap_or(unit.pts);
                self.fifo_pts = Some(pts * i64::from(self.rate) / i64::from(self.in_rate.max(1)));
            }
            match &mut self.resampler {
                None => fill(&mut self.fifo, &self.decoded),
                Some(r) => {
                    // Room for every sample the input makes, and what swr held back.
                    let room = self.decoded.samples() * self.rate as usize
                        / self.in_rate.max(1) as usize
                        + 256;
                    self.decoded.set_channel_layout(self.layout);
                    let mut resampled = ff::frame::Audio::new(
                        ff::format::Sample::F32(ff::format::sample::Type::Planar),
                        room,
                        self.layout,
                    );
                    r.run(&self.decoded, &mut resampled)
                        .map_err(|e| format!("resampling: {e}"))?;
                    fill(&mut self.fifo, &resampled);
                }
            }
            self.encode_ready(&mut out)?;
        }
        Ok(out)
    }

    /// Encodes every full frame the FIFO holds.
    fn encode_ready(&mut self, out: &mut Vec<Unit>) -> Result<(), String> {
        let size = self.frame_size;
        while self.fifo.first().is_some_and(|b| b.len() >= size) {
            let mut frame = ff::frame::Audio::new(self.format, size, self.layout);
            frame.set_rate(self.rate);
            if self.format.is_planar() {
                for (ch, buf) in self.fifo.iter_mut().enumerate() {
                    frame.plane_mut::<f32>(ch)[..size].copy_from_slice(&buf[..size]);
                }
            } else {
                let n = self.fifo.len();
                let data = frame.plane_mut::<f32>(0);
                for (ch, buf) in self.fifo.iter().enumerate() {
                    for (i, v) in buf[..size].iter().enumerate() {
                        data[i * n + ch] = *v;
                    }
                }
            }
            for buf in self.fifo.iter_mut() {
                buf.drain(..size);
            }
            let pts = self.fifo_pts.unwrap_or(0);
            frame.set_pts(Some(pts));
            self.fifo_pts = Some(pts + size as i64);
            self.encoder
                .send_frame(&frame)
                .map_err(|e| format!("audio encoding: {e}"))?;
            while self.encoder.receive_packet(&mut self.packet).is_ok() {
                let Some(data) = self.packet.data() else {
                    continue;
                };
                let pts = self.packet.pts().unwrap_or(pts);
                out.push(Unit {
                    track: 0,
                    pts,
                    dts: pts,
                    keyframe: true,
                    payload: Payload::Frame(Bytes::copy_from_slice(data)),
                });
            }
        }
        Ok(())
    }
}

/// Appends a planar f32 frame's samples to the FIFO, one `Vec` per output channel; a
/// frame with fewer channels repeats its last one, a frame with more is cut.
fn fill(fifo: &mut [Vec<f32>], frame: &ff::frame::Audio) {
    let n = frame.samples();
    let planes = frame.planes();
    for (ch, buf) in fifo.iter_mut().enumerate() {
        let plane = frame.plane::<f32>(ch.min(planes.saturating_sub(1)));
        buf.extend_from_slice(&plane[..n.min(plane.len())]);
    }
}
