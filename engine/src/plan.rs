//! The planner: a play's tasks as a graph of steps.
//!
//! Nodes are added in playbook order, and every edge points forward, so the graph is a DAG whose
//! node order is the order a person reads the play in. Edges say where a host goes next:
//! [`Edge::Next`] after success, [`Edge::Rescue`]/[`Edge::Always`] after a failure inside a block,
//! and the `Unwind*` edges when a host that is still carrying a failure leaves an `always`
//! section (to the enclosing block's rescue or always). A failure with no edge to take ends the
//! host's play. Every host walks the same graph with its own cursor; the linear strategy always
//! runs the lowest node any host waits at, so hosts stay together as Ansible keeps them.
//!
//! Tag selection and `--start-at-task` are applied here: unselected tasks are not in the graph.

use std::sync::Arc;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use settle_playbooks::{Include, Play, Task, TaskNode};

/// One thing a host does.
#[derive(Debug, Clone)]
pub enum Step {
    GatherFacts,
    Task(Arc<Task>),
    Include(Arc<Include>),
    /// The end of a task section: notified handlers run here.
    FlushHandlers,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub step: Step,
    /// The last step of an `always` section: a host carrying a failure unwinds from here.
    pub ends_always: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Next,
    Rescue,
    Always,
    UnwindRescue,
    UnwindAlways,
}

/// Which tasks run: `--tags`, `--skip-tags`, `--start-at-task`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub start_at_task: Option<String>,
}

impl Selection {
    /// Ansible's rules: `always` runs unless skipped by name, `never` only when asked for,
    /// `tagged`/`untagged`/`all` select what they say.
    pub fn selects(&self, task_tags: &[String]) -> bool {
        let has = |t: &str| task_tags.iter().any(|x| x == t);
        let any_in = |set: &[String]| task_tags.iter().any(|t| set.contains(t));
        if !self.skip_tags.is_empty()
            && (any_in(&self.skip_tags)
                || (self.skip_tags.iter().any(|s| s == "tagged") && !task_tags.is_empty())
                || (self.skip_tags.iter().any(|s| s == "untagged") && task_tags.is_empty())
                || self.skip_tags.iter().any(|s| s == "all") && !has("always"))
        {
            return false;
        }
        let only: Vec<String> = if self.tags.is_empty() {
            vec!["all".to_string()]
        } else {
            self.tags.clone()
        };
        if has("always") {
            return true;
        }
        if has("never") && !any_in(&only) {
            return false;
        }
        only.iter().any(|t| t == "all")
            || (only.iter().any(|t| t == "tagged") && !task_tags.is_empty())
            || (only.iter().any(|t| t == "untagged") && task_tags.is_empty())
            || any_in(&only)
    }
}

/// A play's steps, ready to walk.
#[derive(Debug, Default)]
pub struct Plan {
    pub graph: DiGraph<Node, Edge>,
    pub entry: Option<NodeIndex>,
}

#[derive(Default)]
struct Built {
    first: Option<NodeIndex>,
    lasts: Vec<NodeIndex>,
    /// Steps whose failure the enclosing block must handle.
    fails: Vec<NodeIndex>,
    /// Ends of `always` sections, for hosts still carrying a failure.
    unwinds: Vec<NodeIndex>,
}

struct Builder<'a> {
    graph: DiGraph<Node, Edge>,
    selection: &'a Selection,
    /// `--start-at-task`: false until the named task is reached.
    started: &'a mut bool,
}

impl Plan {
    /// Plans a play: facts, `pre_tasks`, handlers, roles and `tasks`, handlers, `post_tasks`,
    /// handlers. `started` carries `--start-at-task` from play to play.
    pub fn for_play(play: &Play, selection: &Selection, started: &mut bool) -> Plan {
        let mut b = Builder {
            graph: DiGraph::new(),
            selection,
            started,
        };
        let mut parts = Vec::new();
        // The steps the play adds itself are tagged `always` and with the play's tags, as in
        // Ansible: `--skip-tags` naming a play's tag skips its fact gathering and flushes too.
        let mut implicit_tags = play.keywords.tags.clone();
        implicit_tags.push("always".to_string());
        let implicit = selection.selects(&implicit_tags);
        if crate::fact_cache::Gathering::from_env().plans(play.gather_facts) && implicit {
            parts.push(b.single(Step::GatherFacts));
        }
        for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
            parts.push(b.list(section));
            if implicit {
                parts.push(b.single(Step::FlushHandlers));
            }
        }
        let built = b.chain(parts);
        Plan {
            graph: b.graph,
            entry: built.first,
        }
    }

    /// Plans the tasks of an `include_tasks` file: no facts, no handler flushes.
    pub fn for_tasks(tasks: &[TaskNode], selection: &Selection) -> Plan {
        let mut started = true;
        let mut b = Builder {
            graph: DiGraph::new(),
            selection,
            started: &mut started,
        };
        let built = b.list(tasks);
        Plan {
            graph: b.graph,
            entry: built.first,
        }
    }

    pub fn node(&self, index: NodeIndex) -> &Node {
        &self.graph[index]
    }

    /// Where an edge of this kind leads from a node, if anywhere.
    pub fn follow(&self, from: NodeIndex, kind: Edge) -> Option<NodeIndex> {
        self.graph
            .edges_directed(from, Direction::Outgoing)
            .find(|e| *e.weight() == kind)
            .map(|e| e.target())
    }

    /// The steps in playbook order (for `--list-tasks`).
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.graph.node_weights().map(|n| &n.step)
    }
}

impl Builder<'_> {
    fn single(&mut self, step: Step) -> Built {
        let n = self.graph.add_node(Node {
            step,
            ends_always: false,
        });
        Built {
            first: Some(n),
            lasts: vec![n],
            fails: vec![n],
            unwinds: Vec::new(),
        }
    }

    fn chain(&mut self, parts: Vec<Built>) -> Built {
        let mut out = Built::default();
        for part in parts {
            let Some(first) = part.first else { continue };
            for last in out.lasts.drain(..) {
                self.graph.add_edge(last, first, Edge::Next);
            }
            out.first.get_or_insert(first);
            out.lasts = part.lasts;
            out.fails.extend(part.fails);
            out.unwinds.extend(part.unwinds);
        }
        out
    }

    fn list(&mut self, nodes: &[TaskNode]) -> Built {
        let parts: Vec<Built> = nodes.iter().map(|n| self.node(n)).collect();
        self.chain(parts)
    }

    fn node(&mut self, node: &TaskNode) -> Built {
        match node {
            TaskNode::Task(task) => {
                if !*self.started {
                    let wanted = self.selection.start_at_task.as_deref().unwrap_or("");
                    if task.name.as_deref() == Some(wanted) || task.display_name() == wanted {
                        *self.started = true;
                    } else {
                        return Built::default();
                    }
                }
                if !self.selection.selects(&task.keywords.tags) && !task.is_role_complete() {
                    return Built::default();
                }
                self.single(Step::Task(Arc::clone(task)))
            }
            TaskNode::Include(include) => {
                if !*self.started || !self.selection.selects(&include.keywords.tags) {
                    return Built::default();
                }
                self.single(Step::Include(Arc::clone(include)))
            }
            TaskNode::Block(block) => {
                let body = self.list(&block.block);
                let rescue = self.list(&block.rescue);
                let always = self.list(&block.always);
                if body.first.is_none() {
                    return always;
                }
                let mut out = Built {
                    first: body.first,
                    ..Built::default()
                };
                // Failures in the body go to rescue, else to always, else up.
                let body_handler = rescue
                    .first
                    .map(|r| (r, Edge::Rescue, Edge::UnwindRescue))
                    .or(always.first.map(|a| (a, Edge::Always, Edge::UnwindAlways)));
                let rescue_handler = always.first.map(|a| (a, Edge::Always, Edge::UnwindAlways));
                for (sources, unwinds, handler) in [
                    (body.fails, body.unwinds, body_handler),
                    (rescue.fails, rescue.unwinds, rescue_handler),
                ] {
                    match handler {
                        Some((target, edge, unwind_edge)) => {
                            for s in sources {
                                self.graph.add_edge(s, target, edge);
                            }
                            for u in unwinds {
                                self.graph.add_edge(u, target, unwind_edge);
                            }
                        }
                        None => {
                            out.fails.extend(sources);
                            out.unwinds.extend(unwinds);
                        }
                    }
                }
                out.fails.extend(always.fails);
                out.unwinds.extend(always.unwinds);
                match always.first {
                    Some(a) => {
                        for last in body.lasts.iter().chain(rescue.lasts.iter()) {
                            self.graph.add_edge(*last, a, Edge::Next);
                        }
                        for last in &always.lasts {
                            self.graph[*last].ends_always = true;
                        }
                        out.unwinds.extend(always.lasts.iter().copied());
                        out.lasts = always.lasts;
                    }
                    None => {
                        out.lasts = body.lasts;
                        out.lasts.extend(rescue.lasts);
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tag_rules() {
        let all = Selection::default();
        assert!(all.selects(&[]));
        assert!(!all.selects(&tags(&["never"])));
        let web = Selection {
            tags: tags(&["web"]),
            ..Selection::default()
        };
        assert!(web.selects(&tags(&["web", "x"])));
        assert!(!web.selects(&tags(&["db"])));
        assert!(web.selects(&tags(&["always"])));
        let skip = Selection {
            skip_tags: tags(&["always"]),
            ..Selection::default()
        };
        assert!(!skip.selects(&tags(&["always"])));
        let never = Selection {
            tags: tags(&["never"]),
            ..Selection::default()
        };
        assert!(never.selects(&tags(&["never"])));
    }
}
