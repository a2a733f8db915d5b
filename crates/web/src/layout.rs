//! Auto-layout: a layered drawing, left to right, of a whole group or a selection, as one
//! `place` request (so it is one edit to undo, and every peer sees it).
//!
//! Sugiyama's method, cut to what a group of an editor needs: cycles are broken by ignoring the
//! wires that close them in a depth-first walk, every node goes to the layer after its longest
//! chain of predecessors, and two sweeps of barycentre ordering reduce crossings. The layered
//! layout crate on crates.io (`rust-sugiyama` 0.4) brings `petgraph`, a general graph library
//! much larger than this module, into a bundle every browser downloads, for the same result at
//! editor sizes.
//!
//! ```
//! use bassline_web::{layout::auto_layout, view::GroupView};
//! use bassline_core::{Network, Request, id};
//! let mut net = Network::new();
//! for c in ["a", "b"] {
//!     net.apply(Request::AddContact { id: Some(id!(c)), group: id!("root"), name: None,
//!         blend: Default::default(), value: Default::default(), boundary: None }).unwrap();
//! }
//! net.apply(Request::Connect { id: None, from: id!("a"), to: id!("b"),
//!     kind: Default::default() }).unwrap();
//! let view = GroupView::build(&net, &id!("root")).unwrap();
//! let place = auto_layout(&view, &[]).unwrap();
//! net.apply(place).unwrap();
//! assert!(net.contact(&id!("a")).unwrap().at.unwrap().x < net.contact(&id!("b")).unwrap().at.unwrap().x);
//! ```

use std::collections::BTreeMap;

use bassline_core::{Id, Placement, Point, Request};

use crate::view::{GroupView, NodeKind};

/// Horizontal distance between layers and vertical gap between nodes.
const LAYER_GAP: i32 = 230;
const NODE_GAP: i32 = 36;

/// A `place` request laying out `only` (all nodes when empty), anchored at the top-left corner
/// of where those nodes are now. `None` when there is nothing to lay out.
pub fn auto_layout(view: &GroupView, only: &[Id]) -> Option<Request> {
    let nodes: Vec<usize> = (0..view.nodes.len())
        .filter(|i| only.is_empty() || only.contains(&view.nodes[*i].id))
        .collect();
    if nodes.is_empty() {
        return None;
    }
    let index: BTreeMap<&Id, usize> = nodes
        .iter()
        .enumerate()
        .map(|(k, i)| (&view.nodes[*i].id, k))
        .collect();
    let n = nodes.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for w in &view.wires {
        if let (Some(&a), Some(&b)) = (index.get(&w.from.0), index.get(&w.to.0))
            && a != b
            && !succ[a].contains(&b)
        {
            succ[a].push(b);
        }
    }
    let succ = acyclic(&succ);
    let mut layer = vec![0usize; n];
    // Longest path: relax in a topological order (repeated passes are fine at editor sizes).
    for _ in 0..n {
        let mut changed = false;
        for a in 0..n {
            for &b in &succ[a] {
                if layer[b] < layer[a] + 1 {
                    layer[b] = layer[a] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (k, l) in layer.iter().enumerate() {
        rows[*l].push(k);
    }
    // Start from the current vertical order, then pull each node toward its neighbours.
    for row in &mut rows {
        row.sort_by_key(|k| view.nodes[nodes[*k]].y);
    }
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (a, bs) in succ.iter().enumerate() {
        for &b in bs {
            pred[b].push(a);
        }
    }
    for sweep in 0..2 {
        let order: Vec<usize> = if sweep == 0 {
            (1..layers).collect()
        } else {
            (0..layers.saturating_sub(1)).rev().collect()
        };
        for l in order {
            let pos: BTreeMap<usize, usize> = rows
                .iter()
                .flat_map(|r| r.iter().enumerate().map(|(i, k)| (*k, i)))
                .collect();
            let neighbours = if sweep == 0 { &pred } else { &succ };
            let key = |k: &usize| {
                let ns = &neighbours[*k];
                if ns.is_empty() {
                    pos[k] as f64
                } else {
                    ns.iter().map(|m| pos[m] as f64).sum::<f64>() / ns.len() as f64
                }
            };
            rows[l].sort_by(|a, b| key(a).total_cmp(&key(b)));
        }
    }
    let left = nodes.iter().map(|i| view.nodes[*i].x).min().unwrap_or(0);
    let top = nodes.iter().map(|i| view.nodes[*i].y).min().unwrap_or(0);
    let mut contacts = Vec::new();
    let mut groups = Vec::new();
    for (l, row) in rows.iter().enumerate() {
        let mut y = top;
        for &k in row {
            let node = &view.nodes[nodes[k]];
            let at = Some(Point {
                x: left + l as i32 * LAYER_GAP,
                y,
            });
            y += node.h + NODE_GAP;
            let p = Placement {
                id: node.id.clone(),
                at,
            };
            match node.kind {
                NodeKind::Contact { .. } => contacts.push(p),
                NodeKind::Gadget(_) | NodeKind::Group => groups.push(p),
            }
        }
    }
    Some(Request::Place { contacts, groups })
}

/// The graph without the edges that close a cycle in a depth-first walk.
fn acyclic(succ: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = succ.len();
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((v, i)) = stack.pop() {
            if let Some(&w) = succ[v].get(i) {
                stack.push((v, i + 1));
                match state[w] {
                    0 => {
                        out[v].push(w);
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    2 => out[v].push(w),
                    _ => {} // back edge: closes a cycle
                }
            } else {
                state[v] = 2;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use bassline_core::{Network, Primitive, id};

    fn build(wires: &[(&str, &str)]) -> Network {
        let mut net = Network::new();
        for c in ["a", "b", "c", "d"] {
            net.apply(testing::contact("root", c)).expect("valid");
        }
        net.apply(testing::group("root", "s", Some(Primitive::Add)))
            .expect("valid");
        for (i, (a, b)) in wires.iter().enumerate() {
            net.apply(testing::wire(&format!("w{i}"), a, b, Default::default()))
                .expect("valid");
        }
        net
    }

    fn x_of(net: &Network, c: &str) -> i32 {
        net.contact(&id!(c))
            .and_then(|c| c.at)
            .map(|p| p.x)
            .unwrap_or(i32::MIN)
    }

    #[test]
    fn chains_go_left_to_right_and_cycles_still_lay_out() {
        let mut net = build(&[
            ("a", "s/a"),
            ("b", "s/b"),
            ("s/out", "c"),
            ("c", "d"),
            ("d", "c"),
        ]);
        let view = GroupView::build(&net, &id!("root")).expect("root");
        let place = auto_layout(&view, &[]).expect("something to lay out");
        net.apply(place).expect("valid placement");
        let s = net.group(&id!("s")).and_then(|g| g.at).expect("placed").x;
        assert!(x_of(&net, "a") < s && x_of(&net, "b") < s);
        assert!(s < x_of(&net, "c") && x_of(&net, "c") < x_of(&net, "d"));
        // No two nodes of one layer overlap.
        let view = GroupView::build(&net, &id!("root")).expect("root");
        for (i, p) in view.nodes.iter().enumerate() {
            for q in &view.nodes[i + 1..] {
                assert!(
                    !crate::geometry::overlaps((p.x, p.y, p.w, p.h), (q.x, q.y, q.w, q.h)),
                    "{} and {} overlap",
                    p.id,
                    q.id
                );
            }
        }
    }

    #[test]
    fn a_selection_moves_alone() {
        let mut net = build(&[("a", "b")]);
        let view = GroupView::build(&net, &id!("root")).expect("root");
        let place = auto_layout(&view, &[id!("a"), id!("b")]).expect("two nodes");
        net.apply(place).expect("valid");
        assert!(net.contact(&id!("c")).and_then(|c| c.at).is_none());
        assert!(x_of(&net, "a") < x_of(&net, "b"));
        assert!(auto_layout(&view, &[id!("nope")]).is_none());
    }
}
