using System.Text;
using CsCheck;
using Xunit.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Refresh;
using Tessera.Core.Sessions;
using Tessera.Core.Tokens;

namespace Tessera.Tests.Refresh;

/// <summary>
/// Issue 3, "Shown by": a model-based property test. Random sequences of refresh, replay, concurrent replay, revoke,
/// user disable/enable, permission changes and time travel run against the real <see cref="RefreshTokenService"/> on a
/// real SQLite file and against a small reference model of DESIGN.md's state machine; both must agree on every step.
/// </summary>
public sealed class RefreshModelTests(ITestOutputHelper output)
{
    /// <summary>How often each predicted outcome came up, so a run that never reached an interesting state shows.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _seen = new();

    public enum OpKind { Refresh, ReplayOlder, ConcurrentNewest, ConcurrentOlder, Revoke, Disable, Enable, Narrow, Widen, Advance }

    /// <summary>One step. <see cref="Arg"/>: seconds for Advance, which older token for the replays, 0 (nothing) or 1 (api.read) for Narrow.</summary>
    public readonly record struct Op(OpKind Kind, long Arg)
    {
        public override string ToString() => Kind switch
        {
            OpKind.Advance => $"Advance({Arg}s)",
            OpKind.ReplayOlder or OpKind.ConcurrentOlder or OpKind.Narrow => $"{Kind}({Arg})",
            _ => Kind.ToString(),
        };
    }

    public sealed record Scenario(long IdleSeconds, long AbsoluteSeconds, long WindowSeconds, bool WithOpenId, Op[] Ops)
    {
        public override string ToString() =>
            $"idle={IdleSeconds}s absolute={AbsoluteSeconds}s window={WindowSeconds}s openid={WithOpenId} ops=[{string.Join(", ", Ops)}]";
    }

    private const long Hour = 3600, Day = 86400;

    private static readonly Gen<long> AdvanceSeconds = Gen.Frequency<long>(
        (4, Gen.Long[1, 40]),
        (3, Gen.OneOf(29L, 30L, 31L)),
        (2, Gen.Long[60, 2 * Hour]),
        (1, Gen.Long[Hour, 2 * Day]),
        (1, Gen.Long[Day, 20 * Day]));

    private static readonly Gen<Op> GenOp = Gen.Frequency<Op>(
        (6, Gen.Const(new Op(OpKind.Refresh, 0))),
        (3, Gen.Long[0, 3].Select(i => new Op(OpKind.ReplayOlder, i))),
        (2, Gen.Const(new Op(OpKind.ConcurrentNewest, 0))),
        (1, Gen.Long[0, 3].Select(i => new Op(OpKind.ConcurrentOlder, i))),
        (1, Gen.Const(new Op(OpKind.Revoke, 0))),
        (1, Gen.Const(new Op(OpKind.Disable, 0))),
        (2, Gen.Const(new Op(OpKind.Enable, 0))),
        (1, Gen.Long[0, 1].Select(i => new Op(OpKind.Narrow, i))),
        (2, Gen.Const(new Op(OpKind.Widen, 0))),
        (6, AdvanceSeconds.Select(s => new Op(OpKind.Advance, s))));

    private static readonly Gen<Scenario> GenScenario =
        from idle in Gen.OneOf(Hour, 2 * Day, 14 * Day)
        from factor in Gen.Int[1, 4]
        from window in Gen.OneOf(30L, 30L, 5L, 0L)
        from openId in Gen.Bool
        from ops in GenOp.Array[1, 40]
        select new Scenario(idle, factor == 4 ? 90 * Day : idle * factor, window, openId, ops);

    [Fact]
    public async Task RandomOperationSequences_AgreeWithTheReferenceModel()
    {
        await using var db = await TempSqliteStore.CreateAsync();
        await GenScenario.SampleAsync(scenario => RunAsync(db, scenario, _seen), iter: 100, threads: 4);

        output.WriteLine(string.Join(", ", _seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}")));
        // Every rule of the model was exercised: rotation, replay inside the window, refusal and reuse, alone and concurrently.
        foreach (var outcome in Enum.GetNames<Outcome>())
            Assert.True(_seen.GetValueOrDefault(outcome) > 0, $"no {outcome} in 100 sequences: {string.Join(", ", _seen)}");
        Assert.True(_seen.GetValueOrDefault("concurrent " + nameof(Outcome.Rotate)) > 0, "no concurrent rotation");
    }

    /// <summary>What DESIGN.md's state machine says about one presented token.</summary>
    private enum Outcome { Rotate, Replay, Refuse, Reuse }

    /// <summary>The reference model: a handful of fields and the rules of DESIGN.md, nothing from the implementation.</summary>
    private sealed class Model(Scenario s, DateTimeOffset begin, IReadOnlyList<string> grantedScopes)
    {
        private readonly DateTimeOffset start = begin;
        public DateTimeOffset Now = begin;
        public int Newest;                          // index of the current token in the chain
        public DateTimeOffset? PreviousConsumedAt;  // when Newest-1 was rotated
        public DateTimeOffset IdleExpiresAt = Min(begin + TimeSpan.FromSeconds(s.IdleSeconds), begin + TimeSpan.FromSeconds(s.AbsoluteSeconds));
        public readonly DateTimeOffset AbsoluteExpiresAt = begin + TimeSpan.FromSeconds(s.AbsoluteSeconds);
        public bool Revoked;
        public bool Disabled;
        public IReadOnlyList<string>? Allowed;

        public IReadOnlyList<string> Effective => grantedScopes.Where(x => Scopes.Identity.Contains(x) || Allowed is null || Allowed.Contains(x)).ToList();

        public Outcome Predict(int index)
        {
            if (Revoked) return Outcome.Refuse;
            var replay = false;
            if (index != Newest)
            {
                if (index == Newest - 1 && PreviousConsumedAt is { } at && Now - at <= TimeSpan.FromSeconds(s.WindowSeconds)) replay = true;
                else return Outcome.Reuse;
            }
            if (Now >= AbsoluteExpiresAt || Now >= IdleExpiresAt) return Outcome.Refuse;
            if (Disabled) return Outcome.Refuse;
            if (Effective.All(x => x == Scopes.OfflineAccess)) return Outcome.Refuse;
            return replay ? Outcome.Replay : Outcome.Rotate;
        }

        public void Apply(Outcome o)
        {
            if (o == Outcome.Reuse) Revoked = true;
            if (o != Outcome.Rotate) return;
            Newest++;
            PreviousConsumedAt = Now;
            IdleExpiresAt = Min(Now + TimeSpan.FromSeconds(s.IdleSeconds), AbsoluteExpiresAt);
        }

        public TimeSpan RefreshExpiresIn => Min(IdleExpiresAt, AbsoluteExpiresAt) - Now;

        private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

        public override string ToString() =>
            $"now=+{(Now - start).TotalSeconds}s newest={Newest} prevConsumed={(PreviousConsumedAt is { } p ? $"+{(p - start).TotalSeconds}s" : "-")} " +
            $"idle=+{(IdleExpiresAt - start).TotalSeconds}s abs=+{(AbsoluteExpiresAt - start).TotalSeconds}s revoked={Revoked} disabled={Disabled} allowed={(Allowed is null ? "*" : "[" + string.Join(' ', Allowed) + "]")}";
    }

    private static async Task RunAsync(TempSqliteStore db, Scenario s, System.Collections.Concurrent.ConcurrentDictionary<string, int> seen)
    {
        var h = new RefreshHarness(db.Store, new FakeTimeProvider(RefreshHarness.T0));
        var client = await h.AddClientAsync(RefreshHarness.PublicClient("model-" + Guid.NewGuid().ToString("N"), new RefreshPolicy
        {
            IdleLifetime = TimeSpan.FromSeconds(s.IdleSeconds),
            AbsoluteLifetime = TimeSpan.FromSeconds(s.AbsoluteSeconds),
            RetryWindow = TimeSpan.FromSeconds(s.WindowSeconds),
        }));
        var user = await h.AddUserAsync();
        IReadOnlyList<string> granted = s.WithOpenId ? ["openid", "offline_access", "api.read", "api.write"] : ["offline_access", "api.read", "api.write"];
        var (session, t0) = await h.StartSessionAsync(client, user, granted);
        var model = new Model(s, h.Now, granted);
        var chain = new List<string> { t0 };
        var log = new StringBuilder();

        for (var step = 0; step < s.Ops.Length; step++)
        {
            var op = s.Ops[step];
            log.Append(op).Append(" | ").Append(model).AppendLine();
            string Where() => $"step {step} ({op}) of {s}\n{log}";
            switch (op.Kind)
            {
                case OpKind.Refresh:
                    await PresentAsync(chain.Count - 1, concurrent: false);
                    break;
                case OpKind.ReplayOlder:
                    if (chain.Count > 1) await PresentAsync(Older(op.Arg), concurrent: false);
                    break;
                case OpKind.ConcurrentNewest:
                    await PresentAsync(chain.Count - 1, concurrent: true);
                    break;
                case OpKind.ConcurrentOlder:
                    if (chain.Count > 1) await PresentAsync(Older(op.Arg), concurrent: true);
                    break;
                case OpKind.Revoke:
                    var revoked = await h.Store.Sessions.RevokeAsync(session.Id, h.Now, RevocationReasons.AdminRevoked, default);
                    Assert.True(revoked == !model.Revoked, "RevokeAsync answered " + revoked + " at " + Where());
                    model.Revoked = true;
                    break;
                case OpKind.Disable:
                    await h.UpdateUserAsync(user, u => u with { Disabled = true });
                    model.Disabled = true;
                    break;
                case OpKind.Enable:
                    await h.UpdateUserAsync(user, u => u with { Disabled = false });
                    model.Disabled = false;
                    break;
                case OpKind.Narrow:
                    IReadOnlyList<string> allowed = op.Arg == 0 ? [] : ["api.read"];
                    await h.UpdateUserAsync(user, u => u with { AllowedScopes = allowed });
                    model.Allowed = allowed;
                    break;
                case OpKind.Widen:
                    await h.UpdateUserAsync(user, u => u with { AllowedScopes = null });
                    model.Allowed = null;
                    break;
                case OpKind.Advance:
                    h.Time.Advance(TimeSpan.FromSeconds(op.Arg));
                    model.Now = h.Now;
                    break;
            }

            var stored = await h.SessionAsync(session.Id);
            Assert.True(model.Revoked == stored.RevokedAt is not null, $"revoked: model {model.Revoked}, store {stored.RevokedAt} at {Where()}");
            if (!model.Revoked)
            {
                Assert.True(Handles.HashEquals(Handles.Hash(chain[^1]), stored.CurrentTokenHash), "the store's current token is not the model's newest at " + Where());
                Assert.True(stored.IdleExpiresAt <= stored.AbsoluteExpiresAt, "idle past absolute at " + Where());
            }

            int Older(long arg) => (int)(chain.Count - 2 - arg % (chain.Count - 1));

            async Task PresentAsync(int index, bool concurrent)
            {
                var expected = model.Predict(index);
                seen.AddOrUpdate((concurrent ? "concurrent " : "") + expected, 1, (_, n) => n + 1);
                var token = chain[index];
                var results = concurrent
                    ? await Task.WhenAll(Task.Run(() => h.RefreshAsync(client, token)), Task.Run(() => h.RefreshAsync(client, token)))
                    : [await h.RefreshAsync(client, token)];
                model.Apply(expected);
                var what = $"presenting token {index} of {chain.Count} (expected {expected}) at {Where()}";
                string? successor = null;
                foreach (var (success, failure) in results)
                {
                    if (expected is Outcome.Refuse or Outcome.Reuse)
                    {
                        Assert.True(success is null, "accepted " + what);
                        Assert.True(failure!.Error == OAuthErrors.InvalidGrant, $"{failure.Error} for {what}");
                        continue;
                    }
                    Assert.True(failure is null, $"refused ({failure?.Error}: {failure?.AuditReason}) {what}");
                    Assert.Equal(model.Effective, success!.Scopes);
                    Assert.True(model.RefreshExpiresIn == success.RefreshExpiresIn, $"refresh_expires_in {success.RefreshExpiresIn} != {model.RefreshExpiresIn} {what}");
                    successor ??= success.RefreshToken;
                    Assert.True(successor == success.RefreshToken, "two different successors (a fork) " + what);
                    if (expected == Outcome.Replay)
                        Assert.True(success.RefreshToken == chain[^1] && success.Replayed, "a replay inside the window did not return the same successor " + what);
                }
                if (expected == Outcome.Rotate)
                {
                    Assert.DoesNotContain(successor!, chain);
                    Assert.Single(results, r => r.Success is { Replayed: false });
                    chain.Add(successor!);
                }
            }
        }
    }
}
