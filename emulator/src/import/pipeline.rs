//! A job's groups imported on every core and committed in order.
//!
//! Every file of every group is a task, taken in group order by one worker
//! per core; the calling thread collects results and commits groups as soon
//! as all their files are done, in group order: every group complete by
//! then in one commit (a group commit), so that many small groups do not
//! pay one durable commit each. Workers stay at most [`WINDOW`] groups ahead
//! of the last commit, so memory follows a few groups, not the job; and no
//! core waits for a commit or for the slowest file of a small group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use super::grouping::Group;

/// How many groups past the last committed one workers may work on.
pub const WINDOW: usize = 8;

/// Runs `work` on every file of `groups[from..]` and `commit` on the
/// results of consecutive groups (each group's in file order, the groups in
/// order: `(group index, results)`), as many complete groups per call as
/// are ready. Stops at the first commit that fails and returns its error.
pub fn run<R: Send, E>(
    groups: &[Group],
    from: usize,
    work: impl Fn(&str) -> R + Sync,
    mut commit: impl FnMut(Vec<(usize, Vec<R>)>) -> Result<(), E>,
) -> Result<(), E> {
    let tasks: Vec<(usize, usize)> = groups
        .iter()
        .enumerate()
        .skip(from)
        .flat_map(|(g, group)| (0..group.files.len()).map(move |f| (g, f)))
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(tasks.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let committed = Mutex::new(from);
    let advanced = Condvar::new();
    let (results, received) = mpsc::channel::<(usize, usize, R)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let results = results.clone();
            let (next, stop, committed, advanced, tasks, work) =
                (&next, &stop, &committed, &advanced, &tasks, &work);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(&(g, f)) = tasks.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let mut last = committed.lock().unwrap_or_else(|e| e.into_inner());
                    while g >= *last + WINDOW && !stop.load(Ordering::Relaxed) {
                        last = advanced.wait(last).unwrap_or_else(|e| e.into_inner());
                    }
                    drop(last);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = work(&groups[g].files[f]);
                    if results.send((g, f, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);
        let mut pending: HashMap<usize, (Vec<Option<R>>, usize)> = HashMap::new();
        let mut next_commit = from;
        let place = |pending: &mut HashMap<usize, (Vec<Option<R>>, usize)>, (g, f, result)| {
            let slot = pending
                .entry(g)
                .or_insert_with(|| ((0..groups[g].files.len()).map(|_| None).collect(), 0));
            slot.0[f] = Some(result);
            slot.1 += 1;
        };
        let outcome = (|| {
            while let Ok(message) = received.recv() {
                place(&mut pending, message);
                // Everything already done joins this commit.
                while let Ok(message) = received.try_recv() {
                    place(&mut pending, message);
                }
                let mut ready = Vec::new();
                while let Some((slots, filled)) = pending.get(&next_commit)
                    && *filled == slots.len()
                {
                    let (slots, _) = pending.remove(&next_commit).expect("present");
                    ready.push((next_commit, slots.into_iter().flatten().collect()));
                    next_commit += 1;
                }
                if ready.is_empty() {
                    continue;
                }
                commit(ready)?;
                *committed.lock().unwrap_or_else(|e| e.into_inner()) = next_commit;
                advanced.notify_all();
            }
            Ok(())
        })();
        if outcome.is_err() {
            stop.store(true, Ordering::Relaxed);
            advanced.notify_all();
            // Drain what the workers still send, so none blocks.
            for _ in received.iter() {}
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(sizes: &[usize]) -> Vec<Group> {
        sizes
            .iter()
            .enumerate()
            .map(|(g, size)| Group {
                series_uid: g.to_string(),
                key: Vec::new(),
                files: (0..*size).map(|f| format!("{g}/{f}")).collect(),
            })
            .collect()
    }

    #[test]
    fn groups_commit_in_order_with_their_files_in_order() {
        let groups = groups(&[3, 1, 5, 2, 4, 1, 1, 6]);
        let mut seen = Vec::new();
        run(
            &groups,
            2,
            |key| {
                // Later files finish first now and then.
                let f: u64 = key.split('/').nth(1).unwrap().parse().unwrap();
                std::thread::sleep(std::time::Duration::from_micros(300 - f * 40));
                key.to_owned()
            },
            |ready| {
                seen.extend(ready);
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        let expected: Vec<(usize, Vec<String>)> = (2..groups.len())
            .map(|g| (g, groups[g].files.clone()))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn groups_ready_together_commit_together() {
        let groups = groups(&[1; 24]);
        let mut commits = Vec::new();
        run(
            &groups,
            0,
            |key| key.to_owned(),
            |ready| {
                // A slow, durable commit: the workers get ahead meanwhile.
                std::thread::sleep(std::time::Duration::from_millis(20));
                commits.push(ready.iter().map(|(g, _)| *g).collect::<Vec<_>>());
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        let order: Vec<usize> = commits.iter().flatten().copied().collect();
        assert_eq!(
            order,
            (0..24).collect::<Vec<_>>(),
            "each group once, in order"
        );
        assert!(
            commits.len() < 24 && commits.iter().any(|c| c.len() > 1),
            "groups share commits: {commits:?}"
        );
        assert!(
            commits.iter().all(|c| c.len() <= WINDOW),
            "no commit holds more than the window: {commits:?}"
        );
    }

    #[test]
    fn a_failed_commit_stops_the_run() {
        let groups = groups(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
        let done = AtomicUsize::new(0);
        let mut commits = 0;
        let outcome = run(
            &groups,
            0,
            |_| done.fetch_add(1, Ordering::Relaxed),
            |ready| {
                commits += 1;
                if ready.iter().any(|(g, _)| *g == 1) {
                    Err("full")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(outcome, Err("full"));
        assert!(commits <= 2, "nothing committed after the failure");
        assert!(
            done.load(Ordering::Relaxed) <= 2 * (2 + WINDOW) + 2,
            "the workers stop near the window"
        );
    }
}
