using Kiln.Jobs;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// A sender that wakes this node's loops itself tags its <c>kiln_jobs</c> NOTIFY with this node, and the node skips
/// its own notification when it comes back (one lease fewer per job); plain and other nodes' payloads still wake.
/// </summary>
public sealed class OwnNotificationTests
{
    [Fact]
    public async Task A_node_skips_its_own_tagged_notification_and_wakes_for_any_other()
    {
        var node = new QueueWakeups(Options.Create(new QueueOptions()));
        var other = new QueueWakeups(Options.Create(new QueueOptions()));

        node.OnNotification("image" + node.NotifySuffix);
        Assert.False(await node.WaitAsync("image", TimeSpan.Zero, CancellationToken.None));

        node.OnNotification("image" + other.NotifySuffix);
        Assert.True(await node.WaitAsync("image", TimeSpan.Zero, CancellationToken.None));

        node.OnNotification("video");
        Assert.True(await node.WaitAsync("video", TimeSpan.Zero, CancellationToken.None));
        Assert.NotEqual(node.NotifySuffix, other.NotifySuffix);
        Assert.StartsWith("|node:", node.NotifySuffix, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Untagged_notifications_are_sent_when_tagging_is_off_and_still_wake()
    {
        var node = new QueueWakeups(Options.Create(new QueueOptions { TagJobNotifications = false }));

        node.OnNotification("image" + node.NotifySuffix);

        Assert.Equal("", node.NotifySuffix);
        Assert.True(await node.WaitAsync("image", TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public async Task An_enqueue_notifies_its_queue_tagged_with_the_enqueuing_node()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await QueueServer.StartAsync(new JobRecorder(), new Dictionary<string, string?> { ["Kiln:Workers:Enabled"] = "false" }, database);
        await using var listener = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(database.ConnectionString) { Pooling = false }.ConnectionString);
        await listener.OpenAsync();
        var payload = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.Notification += (_, e) => payload.TrySetResult(e.Payload);
        await using (var listen = new NpgsqlCommand("listen kiln_jobs", listener))
        {
            await listen.ExecuteNonQueryAsync();
        }

        await server.EnqueueAsync();
        var waiting = listener.WaitAsync(TestContext.Current.CancellationToken);

        Assert.Equal("test" + server.Get<QueueWakeups>().NotifySuffix, await payload.Task.WaitAsync(Poll.DefaultTimeout));
        await waiting.WaitAsync(Poll.DefaultTimeout);
    }
}
