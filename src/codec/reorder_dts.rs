//! Decode timestamps for codecs with reordered frames whose RTP carries presentation
//! times only, when the slice headers aren't parsed (H.265): with reorder depth R from
//! the SPS, frame j after a keyframe decodes at `pts(key) + (j - R) * frame_duration`,
//! never after its own pts and never before the previous dts.

/// One track's decode clock.
#[derive(Debug)]
pub struct ReorderDts {
    reorder: i64,
    key_pts: Option<i64>,
    /// Frames since the last keyframe, in decode order.
    index: i64,
    /// The smallest pts step between neighbouring frames of the previous GOP (of this
    /// one, during the first): one frame's duration. Per GOP, so that one odd step (a
    /// publisher looping a file) costs one GOP at most.
    frame_duration: Option<i64>,
    gop_step: Option<i64>,
    last_pts: Option<i64>,
    last_dts: Option<i64>,
    default_duration: i64,
}

impl ReorderDts {
    /// `reorder` frames of delay at most (the SPS's `max_num_reorder`).
    pub fn new(clock_rate: u32, reorder: u32) -> Self {
        ReorderDts {
            reorder: i64::from(reorder.min(16)),
            key_pts: None,
            index: 0,
            frame_duration: None,
            gop_step: None,
            last_pts: None,
            last_dts: None,
            // Before the first step is seen, assume 30 frames per second.
            default_duration: i64::from(clock_rate.max(30)) / 30,
        }
    }

    pub fn set_reorder(&mut self, reorder: u32) {
        self.reorder = i64::from(reorder.min(16));
    }

    /// The dts of the next access unit in decode order.
    pub fn dts(&mut self, keyframe: bool, pts: i64) -> i64 {
        if keyframe || self.key_pts.is_none() {
            if let Some(step) = self.gop_step.take() {
                self.frame_duration = Some(step);
            }
            self.key_pts = Some(pts);
            self.index = 0;
        } else {
            self.index += 1;
        }
        if let Some(step) = self.last_pts.map(|l| (pts - l).abs()).filter(|s| *s > 0) {
            self.gop_step = Some(self.gop_step.map_or(step, |d| d.min(step)));
        }
        self.last_pts = Some(pts);
        let dts = match self.key_pts {
            Some(key) if self.reorder > 0 => {
                // In the first GOP the smallest step so far may still be several
                // frames (I0 P4 B2 …): the 30 fps guess is closer until it drops below.
                let d = self.frame_duration.unwrap_or_else(|| {
                    self.gop_step
                        .map_or(self.default_duration, |s| s.min(self.default_duration))
                });
                (key + (self.index - self.reorder) * d).min(pts)
            }
            _ => pts,
        };
        let dts = match self.last_dts {
            Some(last) if dts <= last => last + 1,
            _ => dts,
        };
        self.last_dts = Some(dts);
        dts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_frames_get_monotonic_dts_not_after_pts() {
        // libx265 bframes=3 (b-pyramid), display indices in decode order, two GOPs.
        let order = [0, 4, 2, 1, 3, 8, 6, 5, 7];
        let d = 3000;
        let mut x = ReorderDts::new(90000, 2);
        let mut out = Vec::new();
        for gop in 0..2 {
            for (j, k) in order.iter().enumerate() {
                let pts = 900_000 + (gop * 9 + k) * d;
                out.push((pts, x.dts(j == 0, pts)));
            }
        }
        assert!(out.windows(2).all(|w| w[0].1 < w[1].1), "{out:?}");
        assert!(out.iter().all(|(p, d)| d <= p), "{out:?}");
        // Exact decode times, R frames back: from the second GOP on since the step is
        // known, and in the first too at 30 fps.
        let got: Vec<i64> = out.iter().map(|(_, dts)| *dts).collect();
        let want: Vec<i64> = (0..18).map(|j| 900_000 + (j - 2) * d).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn other_frame_rates_get_whole_steps_from_the_first_gop() {
        for d in [3600, 1500] {
            let order = [0, 4, 2, 1, 3, 8, 6, 5, 7];
            let mut x = ReorderDts::new(90000, 2);
            let dts: Vec<i64> = (0..3)
                .flat_map(|gop| order.iter().map(move |k| (gop, k)))
                .enumerate()
                .map(|(i, (gop, k))| x.dts(i % 9 == 0, (gop * 9 + k) * d))
                .collect();
            // Never a one-tick nudge (what a wrong guess would need): whole steps.
            assert!(dts.windows(2).all(|w| w[1] - w[0] >= d / 2), "{d}: {dts:?}");
        }
    }

    #[test]
    fn no_reorder_means_dts_is_pts() {
        let mut x = ReorderDts::new(90000, 0);
        assert_eq!(x.dts(true, 100), 100);
        assert_eq!(x.dts(false, 3100), 3100);
    }
}
