//! Sizes of what the canvas draws, and the viewport (pan and zoom), which is each person's own
//! and never part of the shared state.
//!
//! ```
//! use bassline_web::geometry::Viewport;
//! let mut v = Viewport::default();
//! v.zoom_at(2.0, 100.0, 50.0);
//! // The point under the pointer stays put.
//! let (x, y) = v.to_canvas(100.0, 50.0);
//! assert!((x - 100.0).abs() < 1e-9 && (y - 50.0).abs() < 1e-9);
//! ```

/// A contact node's size on the canvas.
pub const CONTACT_W: i32 = 132;
pub const CONTACT_H: i32 = 50;
/// A subgroup node: its width, title bar, and one row per port.
pub const GROUP_W: i32 = 172;
pub const GROUP_HEAD: i32 = 30;
pub const PORT_ROW: i32 = 24;

pub const MIN_ZOOM: f64 = 0.1;
pub const MAX_ZOOM: f64 = 4.0;

/// Height of a subgroup node with this many input and output ports.
pub fn group_height(inputs: usize, outputs: usize) -> i32 {
    let rows = inputs.max(outputs).max(1) as i32;
    GROUP_HEAD + rows * PORT_ROW + 8
}

/// Where port `row` sits on a subgroup node, relative to its top-left corner.
pub fn port_offset(row: usize, input: bool) -> (i32, i32) {
    let y = GROUP_HEAD + row as i32 * PORT_ROW + PORT_ROW / 2;
    (if input { 0 } else { GROUP_W }, y)
}

/// Screen = canvas × zoom + (x, y).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Viewport {
    pub x: f64,
    pub y: f64,
    pub zoom: f64,
}

impl Default for Viewport {
    fn default() -> Self {
        Viewport {
            x: 0.0,
            y: 0.0,
            zoom: 1.0,
        }
    }
}

impl Viewport {
    /// The canvas point under a screen point (relative to the canvas element).
    pub fn to_canvas(&self, sx: f64, sy: f64) -> (f64, f64) {
        ((sx - self.x) / self.zoom, (sy - self.y) / self.zoom)
    }

    /// Zooms by `factor`, keeping the canvas point under (sx, sy) where it is.
    pub fn zoom_at(&mut self, factor: f64, sx: f64, sy: f64) {
        let (cx, cy) = self.to_canvas(sx, sy);
        self.zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        self.x = sx - cx * self.zoom;
        self.y = sy - cy * self.zoom;
    }

    /// Shows the canvas rectangle (x0, y0)-(x1, y1) in a screen of `w` × `h`, with a margin,
    /// never zooming in past 1.
    pub fn fit(bounds: (f64, f64, f64, f64), w: f64, h: f64) -> Viewport {
        let (x0, y0, x1, y1) = bounds;
        let margin = 48.0;
        let bw = (x1 - x0).max(1.0);
        let bh = (y1 - y0).max(1.0);
        let zoom = ((w - 2.0 * margin) / bw)
            .min((h - 2.0 * margin) / bh)
            .clamp(MIN_ZOOM, 1.0);
        Viewport {
            x: (w - bw * zoom) / 2.0 - x0 * zoom,
            y: (h - bh * zoom) / 2.0 - y0 * zoom,
            zoom,
        }
    }

    /// The SVG transform that draws the canvas through this viewport.
    pub fn transform(&self) -> String {
        format!(
            "translate({:.2} {:.2}) scale({:.4})",
            self.x, self.y, self.zoom
        )
    }
}

/// Rectangles overlap (each `x, y, w, h`).
pub fn overlaps(a: (i32, i32, i32, i32), b: (i32, i32, i32, i32)) -> bool {
    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_shows_the_whole_rectangle_and_zoom_is_bounded() {
        let v = Viewport::fit((0.0, 0.0, 2000.0, 1000.0), 1000.0, 600.0);
        let (x0, y0) = (v.x, v.y);
        let (x1, y1) = (2000.0 * v.zoom + v.x, 1000.0 * v.zoom + v.y);
        assert!(x0 >= 0.0 && y0 >= 0.0 && x1 <= 1000.0 && y1 <= 600.0);
        let small = Viewport::fit((0.0, 0.0, 10.0, 10.0), 1000.0, 600.0);
        assert_eq!(small.zoom, 1.0, "never zooms in past 1");
        let mut z = Viewport::default();
        for _ in 0..50 {
            z.zoom_at(2.0, 0.0, 0.0);
        }
        assert_eq!(z.zoom, MAX_ZOOM);
        assert!(overlaps((0, 0, 10, 10), (5, 5, 10, 10)));
        assert!(!overlaps((0, 0, 10, 10), (10, 0, 10, 10)));
    }
}
