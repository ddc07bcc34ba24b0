//! Placing point labels so that none overlaps another label or a point: greedy, nearest
//! candidate first. Text boxes are estimated from the character count ([`CHAR_W`] per
//! character at [`FONT`], generous for sans-serif so the box covers the drawn text).

/// Font size of point and row labels.
pub const FONT: f64 = 11.0;
/// Estimated width of one character at [`FONT`].
pub const CHAR_W: f64 = 6.4;

/// An axis-aligned box, in SVG units.
#[derive(Clone, Copy, Debug)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Rect {
    /// The area this box shares with `o`.
    pub fn overlap(&self, o: &Rect) -> f64 {
        let w = (self.x + self.w).min(o.x + o.w) - self.x.max(o.x);
        let h = (self.y + self.h).min(o.y + o.h) - self.y.max(o.y);
        if w > 0.0 && h > 0.0 {
            w * h
        } else {
            0.0
        }
    }
    /// Whether this box lies within `o`.
    pub fn inside(&self, o: &Rect) -> bool {
        self.x >= o.x
            && self.y >= o.y
            && self.x + self.w <= o.x + o.w
            && self.y + self.h <= o.y + o.h
    }
}

/// A placed label: text start, baseline, its box, and whether it needs a leader line.
pub struct Placed {
    /// Where the text starts.
    pub x: f64,
    /// Its baseline.
    pub y: f64,
    /// Moved away from its point: draw a leader line.
    pub leader: bool,
    /// The box it covers.
    pub rect: Rect,
}

/// Greedy label placement: candidates around the point, nearest first; the first that
/// overlaps nothing taken and stays inside `bounds` wins, else the least overlapping one.
pub struct Labeler {
    /// Boxes already covered (points, placed labels).
    pub taken: Vec<Rect>,
    /// Where labels must stay.
    pub bounds: Rect,
}

impl Labeler {
    /// Places `text` for the point at (`px`, `py`) and marks its box taken.
    pub fn place(&mut self, px: f64, py: f64, text: &str) -> Placed {
        let w = text.chars().count() as f64 * CHAR_W;
        let h = FONT + 3.0;
        let mut best: Option<(f64, Placed)> = None;
        'search: for r in [8.0, 18.0, 30.0, 44.0, 60.0, 80.0, 105.0] {
            for deg in [
                0.0f64, 180.0, 315.0, 45.0, 270.0, 90.0, 225.0, 135.0, 337.5, 22.5, 202.5, 157.5,
            ] {
                let (dx, dy) = (r * deg.to_radians().cos(), r * deg.to_radians().sin());
                let cx = px + dx;
                let cy = py + dy;
                // Above or below the point: centre the text; else start/end at the candidate.
                let x0 = if dx.abs() < 0.5 {
                    cx - w / 2.0
                } else if dx < 0.0 {
                    cx - w
                } else {
                    cx
                };
                let rect = Rect {
                    x: x0,
                    y: cy - h / 2.0,
                    w,
                    h,
                };
                let mut cost: f64 = self.taken.iter().map(|t| t.overlap(&rect)).sum();
                if !rect.inside(&self.bounds) {
                    cost += 1e6;
                }
                let placed = Placed {
                    x: x0,
                    y: cy + FONT / 2.0 - 1.5,
                    leader: r > 10.0,
                    rect,
                };
                if cost == 0.0 {
                    best = Some((0.0, placed));
                    break 'search;
                }
                if best.as_ref().map_or(true, |(c, _)| cost < *c) {
                    best = Some((cost, placed));
                }
            }
        }
        let (_, p) = best.expect("candidates are tried");
        self.taken.push(p.rect);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_do_not_overlap_even_when_points_coincide() {
        let mut l = Labeler {
            taken: Vec::new(),
            bounds: Rect {
                x: 0.0,
                y: 0.0,
                w: 500.0,
                h: 400.0,
            },
        };
        let placed: Vec<Rect> = (0..8)
            .map(|i| {
                l.place(250.0 + (i % 2) as f64, 200.0, &format!("zstd:-1 b{i} t1"))
                    .rect
            })
            .collect();
        for (i, a) in placed.iter().enumerate() {
            assert!(a.inside(&l.bounds));
            for b in &placed[i + 1..] {
                assert_eq!(a.overlap(b), 0.0, "{a:?} {b:?}");
            }
        }
    }
}
