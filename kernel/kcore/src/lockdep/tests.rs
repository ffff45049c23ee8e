//! Unit tests of the lock-order validator: every kind of report, the
//! orders that must pass, and the full tables.

use super::*;
use alloc::format;
use alloc::string::ToString;

/// The caller's location: a distinct site per call line.
#[track_caller]
fn here() -> Site {
    Location::caller()
}

/// A validator: one graph, its seen set, one held stack per CPU.
struct Rig {
    graph: Graph,
    seen: Seen,
    cpus: [HeldStack; 2],
}

impl Rig {
    fn new() -> Self {
        Self::with_limits(MAX_CLASSES, MAX_EDGES)
    }

    fn with_limits(classes: usize, edges: usize) -> Self {
        Self {
            graph: Graph::with_limits(classes, edges),
            seen: Seen::new(),
            cpus: [HeldStack::new(), HeldStack::new()],
        }
    }

    /// Lock `instance` of the class made at `class_site`, taken at `site`.
    fn lock(&mut self, cpu: u32, l: Lock, site: Site) -> Result<(), Stop> {
        self.lock_keyed(cpu, l, site, None)
    }

    fn lock_keyed(&mut self, cpu: u32, l: Lock, site: Site, key: Option<u64>) -> Result<(), Stop> {
        let class = self.graph.class(l.class_site)?;
        let new = HeldLock {
            class,
            class_site: l.class_site,
            instance: l.instance,
            site,
            key,
        };
        let Rig { graph, seen, cpus } = self;
        acquire(
            &mut cpus[cpu as usize],
            seen,
            |h, n| graph.add_edge(seen, h, n, cpu),
            new,
            cpu,
        )
    }

    fn unlock(&mut self, cpu: u32, l: Lock) -> Option<HeldLock> {
        self.cpus[cpu as usize].release(l.instance)
    }
}

#[derive(Clone, Copy)]
struct Lock {
    class_site: Site,
    instance: usize,
}

fn lock(class_site: Site, instance: usize) -> Lock {
    Lock {
        class_site,
        instance,
    }
}

fn violation(r: Result<(), Stop>) -> Violation {
    match r {
        Err(Stop::Violation(v)) => v,
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn reentry_names_both_sites() {
    let mut rig = Rig::new();
    let ring = lock(here(), 0x1000);
    let first = here();
    rig.lock(0, ring, first).unwrap();
    let again = here();
    let v = violation(rig.lock(0, ring, again));
    match v {
        Violation::Reentry { cpu, new, held } => {
            assert_eq!(cpu, 0);
            assert_eq!(new.site, again);
            assert_eq!(held.site, first);
        }
        other => panic!("{other:?}"),
    }
    let text = v.to_string();
    assert!(
        text.starts_with("re-entry of a held lock on cpu0"),
        "{text}"
    );
    assert!(text.contains(&format!("at {again}")), "{text}");
    assert!(text.contains(&format!("held since {first}")), "{text}");
    assert!(
        text.contains(&format!("lock made at {}", ring.class_site)),
        "{text}"
    );
    // The refused acquisition is not recorded.
    assert_eq!(rig.cpus[0].len(), 1);
}

#[test]
fn reentry_is_per_cpu() {
    let mut rig = Rig::new();
    let l = lock(here(), 1);
    rig.lock(0, l, here()).unwrap();
    // Another CPU spinning for it is ordinary contention.
    rig.lock(1, l, here()).unwrap();
}

#[test]
fn same_class_nesting_needs_increasing_keys() {
    let class = here();
    let (a, b) = (lock(class, 1), lock(class, 2));
    let mut rig = Rig::new();
    rig.lock(0, a, here()).unwrap();
    let v = violation(rig.lock(0, b, here()));
    assert!(matches!(v, Violation::SameClass { .. }), "{v:?}");
    assert!(v.to_string().contains("lock_ordered"));

    let mut rig = Rig::new();
    rig.lock_keyed(0, a, here(), Some(3)).unwrap();
    rig.lock_keyed(0, b, here(), Some(7)).unwrap();
    assert_eq!(rig.graph.edges(), 0, "no self-order is recorded");

    let mut rig = Rig::new();
    rig.lock_keyed(0, a, here(), Some(7)).unwrap();
    let v = violation(rig.lock_keyed(0, b, here(), Some(3)));
    assert!(matches!(v, Violation::SameClass { .. }), "{v:?}");
    assert!(v.to_string().contains("(key 3)") && v.to_string().contains("(key 7)"));

    // A keyed lock nested under a plain one of its class is not ordered.
    let mut rig = Rig::new();
    rig.lock(0, a, here()).unwrap();
    let v = violation(rig.lock_keyed(0, b, here(), Some(9)));
    assert!(matches!(v, Violation::SameClass { .. }), "{v:?}");

    // Equal keys are not an order either.
    let mut rig = Rig::new();
    rig.lock_keyed(0, a, here(), Some(4)).unwrap();
    let v = violation(rig.lock_keyed(0, b, here(), Some(4)));
    assert!(matches!(v, Violation::SameClass { .. }), "{v:?}");
}

#[test]
fn abba_inversion_reports_both_orders() {
    let mut rig = Rig::new();
    let (a, b) = (lock(here(), 0xa), lock(here(), 0xb));
    let (a_first, b_second) = (here(), here());
    rig.lock(0, a, a_first).unwrap();
    rig.lock(0, b, b_second).unwrap();
    rig.unlock(0, b).unwrap();
    rig.unlock(0, a).unwrap();
    let (b_first, a_second) = (here(), here());
    rig.lock(1, b, b_first).unwrap();
    let v = violation(rig.lock(1, a, a_second));
    let Violation::Inversion {
        cpu,
        new,
        held,
        path,
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!((cpu, new.site, held.site), (1, a_second, b_first));
    let edges: alloc::vec::Vec<&Edge> = path.edges().collect();
    assert_eq!(path.len(), 1);
    assert_eq!(edges[0].from_site, a_first);
    assert_eq!(edges[0].to_site, b_second);
    assert_eq!(edges[0].cpu, 0);
    let text = v.to_string();
    for site in [a_first, b_second, b_first, a_second] {
        assert!(
            text.contains(&site.to_string()),
            "{site} missing from {text}"
        );
    }
    assert!(text.starts_with("lock-order inversion on cpu1"), "{text}");
    // The inverted order was not recorded.
    assert!(!rig.seen.contains(new.class, held.class) || !rig.seen.contains(held.class, new.class));
    assert_eq!(rig.graph.edges(), 1);
}

#[test]
fn inversion_through_a_chain() {
    let mut rig = Rig::new();
    let (a, b, c) = (lock(here(), 1), lock(here(), 2), lock(here(), 3));
    // a -> b on cpu0, b -> c on cpu1.
    rig.lock(0, a, here()).unwrap();
    rig.lock(0, b, here()).unwrap();
    rig.unlock(0, a).unwrap();
    rig.unlock(0, b).unwrap();
    rig.lock(1, b, here()).unwrap();
    rig.lock(1, c, here()).unwrap();
    rig.unlock(1, b).unwrap();
    rig.unlock(1, c).unwrap();
    // c held, taking a: a -> b -> c is recorded.
    rig.lock(0, c, here()).unwrap();
    let v = violation(rig.lock(0, a, here()));
    let Violation::Inversion { path, .. } = v else {
        panic!("{v:?}")
    };
    let chain: alloc::vec::Vec<(usize, usize)> = path
        .edges()
        .map(|e| (e.from.index(), e.to.index()))
        .collect();
    assert_eq!(chain, [(0, 1), (1, 2)]);
}

#[test]
fn consistent_orders_pass_with_any_release_order() {
    let mut rig = Rig::new();
    let sites = [here(), here(), here(), here(), here()];
    let locks: alloc::vec::Vec<Lock> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| lock(s, 100 + i))
        .collect();
    for round in 0..20usize {
        let cpu = (round % 2) as u32;
        // Take an increasing subset, release in a round-dependent order.
        let taken: alloc::vec::Vec<Lock> = locks
            .iter()
            .enumerate()
            .filter(|(i, _)| (round >> (i % 3)) & 1 == 1 || i % 2 == round % 2)
            .map(|(_, l)| *l)
            .collect();
        for l in &taken {
            rig.lock(cpu, *l, here()).unwrap();
        }
        for k in 0..taken.len() {
            let l = taken[(k * 3 + round) % taken.len()];
            if rig.cpus[cpu as usize].find(l.instance).is_some() {
                rig.unlock(cpu, l).unwrap();
            }
        }
        loop {
            let Some(h) = rig.cpus[cpu as usize].iter().next().copied() else {
                break;
            };
            rig.unlock(cpu, lock(h.class_site, h.instance)).unwrap();
        }
    }
}

#[test]
fn out_of_order_release_keeps_the_rest() {
    let mut s = HeldStack::new();
    let sites = [here(), here(), here()];
    for (i, site) in sites.iter().enumerate() {
        s.push(HeldLock {
            class: ClassId(i as u16),
            class_site: site,
            instance: i,
            site,
            key: None,
        })
        .unwrap();
    }
    assert_eq!(s.release(1).unwrap().instance, 1);
    let left: alloc::vec::Vec<usize> = s.iter().map(|h| h.instance).collect();
    assert_eq!(left, [0, 2]);
    assert!(s.release(1).is_none(), "released twice");
    assert!(s.release(7).is_none(), "never held");
    assert_eq!(s.release(2).unwrap().instance, 2);
    assert_eq!(s.release(0).unwrap().instance, 0);
    assert!(s.is_empty());
}

#[test]
fn full_class_table_stops() {
    let mut rig = Rig::with_limits(2, MAX_EDGES);
    rig.lock(0, lock(here(), 1), here()).unwrap();
    rig.lock(0, lock(here(), 2), here()).unwrap();
    assert_eq!(
        rig.lock(0, lock(here(), 3), here()),
        Err(Stop::Full(Capacity::Classes(2)))
    );
    assert_eq!(
        Capacity::Classes(2).to_string(),
        "graph full (2 lock classes)"
    );
}

#[test]
fn full_edge_table_stops() {
    let mut rig = Rig::with_limits(MAX_CLASSES, 1);
    let (a, b, c) = (lock(here(), 1), lock(here(), 2), lock(here(), 3));
    rig.lock(0, a, here()).unwrap();
    rig.lock(0, b, here()).unwrap();
    assert_eq!(rig.lock(0, c, here()), Err(Stop::Full(Capacity::Edges(1))));
    assert_eq!(rig.graph.edges(), 1);
    // Known orders still pass without room.
    rig.unlock(0, b).unwrap();
    rig.lock(0, b, here()).unwrap();
}

#[test]
fn held_stack_overflow_stops() {
    let mut rig = Rig::new();
    let class = here();
    for i in 0..MAX_HELD {
        rig.lock_keyed(0, lock(class, i), here(), Some(i as u64))
            .unwrap();
    }
    assert_eq!(
        rig.lock_keyed(0, lock(class, 999), here(), Some(999)),
        Err(Stop::Full(Capacity::Held(MAX_HELD)))
    );
}

#[test]
fn irq_use_conflict() {
    let mut g = Graph::new();
    let seen = Seen::new();
    let class_site = here();
    let c = g.class(class_site).unwrap();
    let irq_site = here();
    g.note_use(&seen, c, class_site, Usage::InIrq, irq_site, 1)
        .unwrap();
    g.note_use(&seen, c, class_site, Usage::InIrq, here(), 0)
        .unwrap();
    assert!(seen.has_use(c, Usage::InIrq));
    assert!(!seen.has_use(c, Usage::IrqsOn));
    let on_site = here();
    let v = g
        .note_use(&seen, c, class_site, Usage::IrqsOn, on_site, 0)
        .unwrap_err();
    assert_eq!(
        v,
        Violation::IrqUnsafe {
            class_site,
            in_irq: irq_site,
            irq_cpu: 1,
            irqs_on: on_site,
            on_cpu: 0
        }
    );
    let text = v.to_string();
    assert!(text.contains(&irq_site.to_string()) && text.contains(&on_site.to_string()));

    // One kind of use alone is fine.
    let d = g.class(here()).unwrap();
    g.note_use(&seen, d, class_site, Usage::IrqsOn, here(), 0)
        .unwrap();
    g.note_use(&seen, d, class_site, Usage::IrqsOn, here(), 1)
        .unwrap();
}

#[test]
fn not_held_and_switch_reports_read_well() {
    let site = here();
    let v = Violation::NotHeld {
        cpu: 2,
        class_site: site,
        instance: 0x10,
    };
    assert!(v.to_string().contains("taken on another CPU"));
    let held = HeldLock {
        class: ClassId(0),
        class_site: site,
        instance: 1,
        site,
        key: None,
    };
    let v = Violation::HeldAtSwitch { cpu: 3, held };
    let text = v.to_string();
    assert!(
        text.starts_with("lock held across a thread switch on cpu3"),
        "{text}"
    );
    assert!(text.contains(&site.to_string()));
}

#[test]
fn classes_are_keyed_by_site_value() {
    let mut g = Graph::new();
    let s = here();
    let a = g.class(s).unwrap();
    assert_eq!(g.class(s).unwrap(), a);
    let b = g.class(here()).unwrap();
    assert_ne!(a, b);
    assert_eq!(g.classes(), 2);
    assert_eq!(g.class_site(a), Some(s));
    assert_eq!(ClassId::from_index(MAX_CLASSES), None);
    assert_eq!(ClassId::from_index(5).map(ClassId::index), Some(5));
}

#[test]
fn unknown_cpu_prints_as_a_question_mark() {
    assert_eq!(Cpu(UNKNOWN_CPU).to_string(), "cpu?");
    assert_eq!(Cpu(3).to_string(), "cpu3");
    let site = here();
    let held = HeldLock {
        class: ClassId(0),
        class_site: site,
        instance: 1,
        site,
        key: None,
    };
    let v = Violation::Reentry {
        cpu: UNKNOWN_CPU,
        new: held,
        held,
    };
    assert!(v.to_string().starts_with("re-entry of a held lock on cpu?"));
}
