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

/// A rectangle of the canvas, in canvas units: left, top, right, bottom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl Area {
    /// The part of the canvas a screen of `w` × `h` pixels shows through `v`.
    pub fn seen(v: &Viewport, w: f64, h: f64) -> Area {
        let (left, top) = v.to_canvas(0.0, 0.0);
        let (right, bottom) = v.to_canvas(w, h);
        Area {
            left,
            top,
            right,
            bottom,
        }
    }

    /// Whether `other` lies wholly inside.
    pub fn contains(&self, other: &Area) -> bool {
        self.left <= other.left
            && self.top <= other.top
            && self.right >= other.right
            && self.bottom >= other.bottom
    }

    /// Whether the rectangle `x, y, w, h` shares any point with this area.
    pub fn meets(&self, (x, y, w, h): (f64, f64, f64, f64)) -> bool {
        x <= self.right && x + w >= self.left && y <= self.bottom && y + h >= self.top
    }

    fn width(&self) -> f64 {
        self.right - self.left
    }

    fn height(&self) -> f64 {
        self.bottom - self.top
    }

    /// Grown by `by` of its own size on every side.
    fn grown(&self, by: f64) -> Area {
        let (dx, dy) = (self.width() * by, self.height() * by);
        Area {
            left: self.left - dx,
            top: self.top - dy,
            right: self.right + dx,
            bottom: self.bottom + dy,
        }
    }
}

/// What the canvas draws for a screen that shows `seen`: the seen area and half of it again on
/// every side, kept as it was (`drawn`) while a quarter of the screen's size is still drawn
/// beyond every edge and zooming did not shrink the seen area to a small part of it. So a pan
/// adds and removes nodes in strips of about a quarter screen, not at every frame (and not
/// half the canvas at once), and a node just off the edge is already drawn when a pan brings
/// it in.
pub fn drawn_area(seen: Area, drawn: Option<Area>) -> Area {
    match drawn {
        Some(d) if d.contains(&seen.grown(0.25)) && d.width() <= seen.width() * 4.0 => d,
        _ => seen.grown(0.5),
    }
}

/// A wire's curve from (x1, y1) to (x2, y2): leaves its start to the right, arrives at its end
/// from the left. Returns the control points (start, two handles, end).
pub fn curve_points(x1: f64, y1: f64, x2: f64, y2: f64) -> [(f64, f64); 4] {
    let bend = ((x2 - x1).abs() / 2.0).max(40.0);
    [(x1, y1), (x1 + bend, y1), (x2 - bend, y2), (x2, y2)]
}

/// A rectangle (`x, y, w, h`) holding the whole curve: a cubic Bézier stays inside the hull
/// of its control points.
pub fn curve_bounds(x1: f64, y1: f64, x2: f64, y2: f64) -> (f64, f64, f64, f64) {
    let p = curve_points(x1, y1, x2, y2);
    let (mut l, mut t, mut r, mut b) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in p {
        (l, t, r, b) = (l.min(x), t.min(y), r.max(x), b.max(y));
    }
    (l, t, r - l, b - t)
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

    #[test]
    fn the_drawn_area_covers_the_screen_and_moves_only_when_left() {
        let mut v = Viewport::default();
        let seen = Area::seen(&v, 1000.0, 600.0);
        assert_eq!(
            (seen.left, seen.top, seen.right, seen.bottom),
            (0.0, 0.0, 1000.0, 600.0)
        );
        let drawn = drawn_area(seen, None);
        assert_eq!(
            (drawn.left, drawn.top, drawn.right, drawn.bottom),
            (-500.0, -300.0, 1500.0, 900.0)
        );
        // A pan of less than a quarter screen keeps it.
        v.x -= 240.0;
        assert_eq!(
            drawn_area(Area::seen(&v, 1000.0, 600.0), Some(drawn)),
            drawn
        );
        // Further, and it follows: the screen is inside the new one.
        v.x -= 20.0;
        let seen = Area::seen(&v, 1000.0, 600.0);
        let moved = drawn_area(seen, Some(drawn));
        assert_ne!(moved, drawn);
        assert!(moved.contains(&seen));
        // Zoomed far in, a much smaller area is drawn instead of the old large one.
        v.zoom_at(8.0, 500.0, 300.0);
        let close = Area::seen(&v, 1000.0, 600.0);
        let after = drawn_area(close, Some(moved));
        assert!(after.contains(&close) && after.width() < moved.width() / 2.0);
        assert!(
            after.meets((close.left - 10.0, close.top, 10.0, 10.0)),
            "edges touch"
        );
        assert!(!after.meets((after.right + 1.0, close.top, 10.0, 10.0)));
    }

    #[test]
    fn a_wire_curve_stays_inside_its_bounds() {
        for (x1, y1, x2, y2) in [
            (0.0, 0.0, 300.0, 50.0),
            (300.0, 80.0, 0.0, -40.0),
            (5.0, 5.0, 5.0, 5.0),
        ] {
            let [p0, p1, p2, p3] = curve_points(x1, y1, x2, y2);
            let (x, y, w, h) = curve_bounds(x1, y1, x2, y2);
            for i in 0..=20 {
                let t = f64::from(i) / 20.0;
                let u = 1.0 - t;
                let at = |a: f64, b: f64, c: f64, d: f64| {
                    u * u * u * a + 3.0 * u * u * t * b + 3.0 * u * t * t * c + t * t * t * d
                };
                let px = at(p0.0, p1.0, p2.0, p3.0);
                let py = at(p0.1, p1.1, p2.1, p3.1);
                assert!(
                    px >= x - 1e-9 && px <= x + w + 1e-9,
                    "x {px} outside {x}..{}",
                    x + w
                );
                assert!(py >= y - 1e-9 && py <= y + h + 1e-9);
            }
        }
    }
}
