//! RATE-ROTATING-ID: calls that differ only in what the caller chooses (identity headers, an
//! identity argument), paired with plain calls while the limit is in force.

use super::*;

/// Rounds of rotation while the limit is in force, counted as pairs: rounds where only the
/// forged call was served, rounds where only the plain one was, and how many forged calls were
/// served in all.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rotation {
    pub(super) forged_only: usize,
    pub(super) plain_only: usize,
    pub(super) forged_served: usize,
}

impl Rotation {
    pub(super) fn describe(&self, forged: &str) -> String {
        format!(
            "{forged} served and the plain call refused in {} of {ROTATIONS} rounds, the reverse in {}; {forged} served {} times in all",
            self.forged_only, self.plain_only, self.forged_served
        )
    }
}

/// [`ROTATIONS`] rounds of four calls: plain, compared, plain, compared, where the two compared
/// calls are one plain and one forged call in a random order. Each compared call comes right
/// after a plain call that takes whatever the bucket refilled, so both see the same refill (a
/// forged call that followed a refused one would otherwise get the token the plain call just
/// missed). The order is random and each round starts after a random pause of up to 2 ms,
/// because a round that lasts about as long as the limiter's refill interval locks in phase
/// with it and hands every refilled token to the same position: with a fixed order that was a
/// false positive on the reference server under load. The rounds are judged as pairs (see
/// [`rotation_verdict`]).
pub(super) async fn rotate(
    run: &mut Run<'_>,
    tool: &str,
    plain: &Value,
    forge: impl Fn(usize) -> (Vec<(String, String)>, Value),
) -> Rotation {
    let mut rotation = Rotation::default();
    let rounds: Vec<(bool, u64)> = (0..ROTATIONS)
        .map(|_| (rand::random::<bool>(), rand::random_range(0..2_000u64)))
        .collect();
    for (i, (forged_first, pause_us)) in rounds.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_micros(pause_us)).await;
        let (headers, arguments) = forge(i);
        let (mut plain_served, mut forged_served) = (false, false);
        for forged_turn in [forged_first, !forged_first] {
            call_with_headers(run, Vec::new(), tool, plain).await;
            if forged_turn {
                forged_served =
                    call_with_headers(run, headers.clone(), tool, &arguments).await == Fate::Served;
            } else {
                plain_served =
                    call_with_headers(run, Vec::new(), tool, plain).await == Fate::Served;
            }
        }
        rotation.forged_served += usize::from(forged_served);
        rotation.forged_only += usize::from(forged_served && !plain_served);
        rotation.plain_only += usize::from(plain_served && !forged_served);
    }
    rotation
}

/// A sign test on the discordant rounds: on a server that ignores the forged value, "only the
/// forged call served" and "only the plain call served" are equally likely (the order within a
/// round is random). Fail when at least [`DISCORDANT_TO_FAIL`] rounds went the forged way and
/// none the other; inconclusive when the forged way is ahead beyond chance (one-sided sign test,
/// p < [`ROTATION_ALPHA`]) without that; pass otherwise. A correct limiter near its refill
/// boundary splits a few rounds either way (6 to 1 happens by chance once in 16 runs: p 0.06).
pub(super) fn rotation_verdict(rotation: Rotation) -> Verdict {
    if rotation.plain_only == 0 && rotation.forged_only >= DISCORDANT_TO_FAIL {
        Verdict::Fail
    } else if sign_test_p(rotation.forged_only, rotation.plain_only) < ROTATION_ALPHA {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

/// The level below which the forged way's lead is not chance.
const ROTATION_ALPHA: f64 = 0.01;

/// P(at least `ahead` of `ahead + behind` fair coin flips go one way): the one-sided sign
/// test's p-value.
fn sign_test_p(ahead: usize, behind: usize) -> f64 {
    let n = ahead + behind;
    if n == 0 {
        return 1.0;
    }
    let choose = |n: usize, k: usize| -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    };
    (ahead..=n).map(|k| choose(n, k)).sum::<f64>() / 2f64.powi(n as i32)
}

/// Sends one call with `overrides` replacing the user's headers (HTTP only).
pub(super) async fn call_with_headers(
    run: &mut Run<'_>,
    overrides: Vec<(String, String)>,
    tool: &str,
    arguments: &Value,
) -> Fate {
    let result = run
        .call_tool_with_headers(tool, arguments.clone(), overrides)
        .await;
    fate(&result.reply, &run.refusals)
}

/// The identity-argument experiment: the tool that takes one, flooded with a fixed value until
/// refused (unless the main flood already was that tool's), then rotated. `None` when no tool
/// takes an identity argument; `Some((tool, argument, None))` when its flood was never refused.
pub(super) async fn rotate_identity_argument(
    run: &mut Run<'_>,
    size: usize,
) -> Option<(String, String, Option<Rotation>)> {
    let (tool, point) = identity_tool(run.tools)?;
    let (tool, point) = (tool.clone(), point.clone());
    let parameter = point.name.clone();
    let plain = with_value_at(
        run.arguments_at(&tool, Some(&point)),
        &point.pointer,
        Value::from(PLAIN_IDENTITY),
    );
    // The main flood may have used the same tool with another value, and the recovery wait
    // refilled its bucket: flood again with the fixed value until refused.
    let flood = flood(run, &tool.name, &plain, size).await;
    if flood.refused == 0 {
        return Some((tool.name, parameter, None));
    }
    let rotation = rotate(run, &tool.name, &plain, |i| {
        let forged = with_value_at(
            plain.clone(),
            &point.pointer,
            Value::from(format!("{PLAIN_IDENTITY}-{}", i + 2)),
        );
        (Vec::new(), forged)
    })
    .await;
    Some((tool.name, parameter, Some(rotation)))
}

pub(super) fn rotating_id_outcome(
    headers: Option<Rotation>,
    argument: Option<(String, String, Option<Rotation>)>,
    limited: bool,
    stdio: bool,
    flooded_tool: &str,
) -> Outcome {
    let info = &RATE_ROTATING_ID;
    if let Some(rotation) = headers.filter(|r| rotation_verdict(*r) == Verdict::Fail) {
        return Outcome::new(
            info,
            Verdict::Fail,
            "a new X-Forwarded-For resets the limit: forged calls are served while plain calls are refused",
        )
        .with_evidence(vec![Evidence {
            tool: Some(flooded_tool.to_owned()),
            point: None,
            request: format!("{ROTATIONS} rounds of four calls right after the flood: plain, then (in a random order, each after a plain call) a plain call and one carrying X-Forwarded-For / X-Real-IP / Forwarded 203.0.113.x"),
            reply: rotation.describe("the forged call"),
            oracle: "calls differing only in client-chosen headers served while identical plain calls are refused".into(),
        }]);
    }
    if let Some((tool, parameter, Some(rotation))) = &argument
        && rotation_verdict(*rotation) == Verdict::Fail
    {
        return Outcome::new(
            info,
            Verdict::Fail,
            format!("a new value of the `{parameter}` argument resets the limit: the limiter keys on what the caller says it is"),
        )
        .with_evidence(vec![Evidence {
            tool: Some(tool.clone()),
            point: None,
            request: format!("a flood of {tool} with {parameter} = \"{PLAIN_IDENTITY}\" until refused, then {ROTATIONS} rounds of four calls: plain, then (in a random order, each after a plain call) a plain call and one with a new {parameter}"),
            reply: rotation.describe(&format!("the call with a new {parameter}")),
            oracle: format!("calls differing only in the caller-chosen `{parameter}` served while identical plain calls are refused"),
        }]);
    }
    let mut passed = Vec::new();
    let mut unclear = Vec::new();
    if let Some(rotation) = headers {
        let text = format!(
            "forged X-Forwarded-For calls fared like plain ones ({})",
            rotation.describe("the forged call")
        );
        match rotation_verdict(rotation) {
            Verdict::Pass => passed.push(text),
            _ => unclear.push(format!(
                "headers mixed: {}",
                rotation.describe("the forged call")
            )),
        }
    }
    match &argument {
        Some((_, parameter, Some(rotation))) => {
            let text = format!(
                "new `{parameter}` values fared like the fixed one ({})",
                rotation.describe("the new value")
            );
            match rotation_verdict(*rotation) {
                Verdict::Pass => passed.push(text),
                _ => unclear.push(format!(
                    "`{parameter}` mixed: {}",
                    rotation.describe("the new value")
                )),
            }
        }
        Some((tool, parameter, None)) if passed.is_empty() && unclear.is_empty() => {
            return Outcome::new(
                info,
                Verdict::NotApplicable,
                format!(
                    "a flood of {tool} with a fixed `{parameter}` was never refused, so there is no limit to reset"
                ),
            );
        }
        _ => {}
    }
    if !unclear.is_empty() {
        return Outcome::new(info, Verdict::Inconclusive, unclear.join("; "));
    }
    if !passed.is_empty() {
        return Outcome::new(info, Verdict::Pass, passed.join("; "));
    }
    let why = if !limited {
        "the flood was never refused, so there is no limit to reset"
    } else if stdio {
        "a stdio target has no client-chosen identity headers, and no tool takes an identity argument"
    } else {
        "no rotation was possible"
    };
    Outcome::new(info, Verdict::NotApplicable, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(forged_only: usize, plain_only: usize) -> Rotation {
        Rotation {
            forged_only,
            plain_only,
            forged_served: forged_only,
        }
    }

    #[test]
    fn the_forged_way_must_lead_beyond_chance_to_be_doubted() {
        assert!((sign_test_p(6, 1) - 8.0 / 128.0).abs() < 1e-12);
        assert_eq!(sign_test_p(0, 0), 1.0);
        assert_eq!(rotation_verdict(rounds(16, 0)), Verdict::Fail);
        assert_eq!(rotation_verdict(rounds(10, 0)), Verdict::Fail);
        assert_eq!(rotation_verdict(rounds(6, 1)), Verdict::Pass);
        assert_eq!(rotation_verdict(rounds(3, 4)), Verdict::Pass);
        assert_eq!(rotation_verdict(rounds(9, 0)), Verdict::Inconclusive);
        assert_eq!(rotation_verdict(rounds(12, 1)), Verdict::Inconclusive);
    }
}
