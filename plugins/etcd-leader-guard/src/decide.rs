//! The guard's judgement, from what etcd said: pure, so every case is
//! tested natively.

use crate::etcd::{Member, Status};

/// What the guard answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The pod may go.
    Allow,
    /// The pod must stay, for the reason given.
    Deny(String),
}

/// Another voting member and how it answered (or why it did not).
pub type Peer<'a> = (&'a Member, Result<Status, String>);

/// Judges removing `pod`, whose member answered `target`, from a cluster of
/// `members`, given how each other voting member answered (`peers`).
///
/// - The leader's pod is refused: its loss stalls writes until an election,
///   and moving leadership first makes the deletion harmless.
/// - A voting member's pod is refused when the other healthy voting members
///   (answering and following a leader) are fewer than quorum.
/// - Otherwise, and always for a learner, the pod may go.
pub fn judge(pod: &str, target: &Status, members: &[Member], peers: &[Peer]) -> Decision {
    let me = target.header.member_id;
    let voting = members.iter().filter(|member| !member.learner).count();
    if members
        .iter()
        .any(|member| member.id == me && member.learner)
    {
        return Decision::Allow;
    }
    let healthy: Vec<&Member> = peers
        .iter()
        .filter(|(_, status)| status.as_ref().is_ok_and(|status| status.leader != 0))
        .map(|(member, _)| *member)
        .collect();
    if target.leads() {
        let successor = healthy.first().map_or_else(
            || "<id of a healthy member>".to_owned(),
            |member| hex(member.id),
        );
        return Decision::Deny(format!(
            "pod {pod} is the etcd raft leader (member {}); move leadership first: etcdctl move-leader {successor}",
            hex(me)
        ));
    }
    let quorum = voting / 2 + 1;
    if healthy.len() < quorum {
        let unhealthy: Vec<String> = peers
            .iter()
            .filter(|(member, _)| !healthy.iter().any(|ok| ok.id == member.id))
            .map(|(member, status)| {
                let why = match status {
                    Ok(_) => "knows no leader".to_owned(),
                    Err(error) => error.clone(),
                };
                format!("{} ({why})", display(member))
            })
            .collect();
        return Decision::Deny(format!(
            "deleting pod {pod} would leave {} of {voting} etcd members healthy, below quorum ({quorum}); \
             unhealthy: {}; bring them back before removing this one",
            healthy.len(),
            unhealthy.join(", ")
        ));
    }
    Decision::Allow
}

/// A member ID as etcdctl writes it.
pub fn hex(id: u64) -> String {
    format!("{id:x}")
}

fn display(member: &Member) -> String {
    if member.name.is_empty() {
        format!("member {}", hex(member.id))
    } else {
        member.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::Header;

    fn member(id: u64, learner: bool) -> Member {
        Member {
            id,
            name: format!("etcd-{id}"),
            client_urls: vec![format!("http://127.0.0.{}:2379", id + 1)],
            learner,
        }
    }

    fn status(id: u64, leader: u64) -> Status {
        Status {
            header: Header { member_id: id },
            leader,
        }
    }

    fn cluster(n: u64) -> Vec<Member> {
        (1..=n).map(|id| member(id, false)).collect()
    }

    fn peers<'a>(members: &'a [Member], me: u64, answers: &[Result<u64, &str>]) -> Vec<Peer<'a>> {
        members
            .iter()
            .filter(|member| member.id != me && !member.learner)
            .zip(answers)
            .map(|(member, answer)| {
                let answer = answer
                    .map(|leader| status(member.id, leader))
                    .map_err(str::to_owned);
                (member, answer)
            })
            .collect()
    }

    #[test]
    fn the_leader_is_refused_with_the_move_leader_command() {
        let members = cluster(3);
        let peers = peers(&members, 1, &[Ok(1), Ok(1)]);
        let decision = judge("etcd-1", &status(1, 1), &members, &peers);
        assert_eq!(
            decision,
            Decision::Deny(
                "pod etcd-1 is the etcd raft leader (member 1); move leadership first: etcdctl move-leader 2"
                    .into()
            )
        );
    }

    #[test]
    fn a_follower_of_a_healthy_cluster_may_go() {
        let members = cluster(3);
        let peers = peers(&members, 2, &[Ok(1), Ok(1)]);
        assert_eq!(
            judge("etcd-2", &status(2, 1), &members, &peers),
            Decision::Allow
        );
    }

    #[test]
    fn a_follower_whose_loss_breaks_quorum_is_refused_naming_the_dead() {
        let members = cluster(3);
        let peers = peers(&members, 2, &[Ok(1), Err("ConnectionRefused")]);
        let Decision::Deny(message) = judge("etcd-2", &status(2, 1), &members, &peers) else {
            panic!("allowed");
        };
        assert!(message.contains("would leave 1 of 3"), "{message}");
        assert!(message.contains("quorum (2)"), "{message}");
        assert!(message.contains("etcd-3 (ConnectionRefused)"), "{message}");
    }

    #[test]
    fn five_members_tolerate_one_loss_more() {
        let members = cluster(5);
        let one_down = peers(&members, 2, &[Ok(1), Ok(1), Ok(1), Err("down")]);
        assert_eq!(
            judge("etcd-2", &status(2, 1), &members, &one_down),
            Decision::Allow
        );
        let two_down = peers(&members, 2, &[Ok(1), Err("down"), Err("down"), Ok(1)]);
        assert!(matches!(
            judge("etcd-2", &status(2, 1), &members, &two_down),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn members_without_a_leader_do_not_count_as_healthy() {
        let members = cluster(3);
        let peers = peers(&members, 2, &[Ok(0), Ok(0)]);
        let Decision::Deny(message) = judge("etcd-2", &status(2, 0), &members, &peers) else {
            panic!("allowed");
        };
        assert!(message.contains("knows no leader"), "{message}");
    }

    #[test]
    fn learners_may_go_and_do_not_count() {
        let mut members = cluster(3);
        members.push(member(4, true));
        let peers_of_learner = peers(&members, 4, &[Ok(1), Ok(1), Ok(1)]);
        assert_eq!(
            judge("etcd-4", &status(4, 1), &members, &peers_of_learner),
            Decision::Allow
        );
        // Quorum is still 2 of the 3 voters, whatever the learner says.
        let peers = peers(&members, 2, &[Ok(1), Err("down")]);
        assert!(matches!(
            judge("etcd-2", &status(2, 1), &members, &peers),
            Decision::Deny(_)
        ));
    }
}
