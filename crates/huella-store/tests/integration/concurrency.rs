//! Many readers while one writer writes.

use crate::common::{encounter, new_gallery};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn readers_see_consistent_snapshots_while_a_writer_writes() {
    let (_dir, g) = new_gallery();
    let g = Arc::new(g);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (g, done) = (Arc::clone(&g), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut last_generation = 0;
                let mut rounds = 0u32;
                while !done.load(Ordering::Acquire) || rounds < 2 {
                    // verify() cross-checks every table within one snapshot: a reader
                    // must never see half of an encounter.
                    let stats = g.verify().expect("consistent snapshot");
                    assert!(stats.generation >= last_generation, "generation went back");
                    assert_eq!(
                        stats.encounters, stats.generation,
                        "one encounter per write"
                    );
                    last_generation = stats.generation;
                    if r == 0 {
                        let mut n = 0;
                        g.for_each_template(|_| {
                            n += 1;
                            Ok(())
                        })
                        .expect("scan");
                        assert!(n >= stats.templates);
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let writer = {
        let g = Arc::clone(&g);
        std::thread::spawn(move || {
            for i in 0..40u64 {
                g.add_encounter(encounter(&format!("S{}", i % 7), i, 1 + (i % 4) as usize))
                    .expect("add");
            }
        })
    };
    writer.join().expect("writer did not panic");
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().expect("reader did not panic") >= 2);
    }
    let stats = g.verify().expect("consistent");
    assert_eq!((stats.subjects, stats.encounters), (7, 40));
}
