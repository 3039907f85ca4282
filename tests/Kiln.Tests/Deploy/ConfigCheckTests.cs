using System.Text.RegularExpressions;

namespace Kiln.Tests.Deploy;

/// <summary>The shipped deploy/ files pass their own tools' checks (no container engine or systemd needed).</summary>
public sealed partial class ConfigCheckTests
{
    [Fact]
    public async Task Promtool_accepts_the_prometheus_config_and_the_alert_rules()
    {
        var config = await Tool.RunAsync("promtool", ["check", "config", Tool.Deploy("prometheus", "prometheus.yml")]);
        Assert.True(config.ExitCode == 0, config.Stdout + config.Stderr);
        Assert.Contains("1 rule files found", config.Stdout + config.Stderr, StringComparison.Ordinal);

        var rules = await Tool.RunAsync("promtool", ["check", "rules", Tool.Deploy("prometheus", "alerts.yml")]);
        Assert.True(rules.ExitCode == 0, rules.Stdout + rules.Stderr);
        Assert.Contains("SUCCESS: 6 rules found", rules.Stdout + rules.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("monitoring")]
    [InlineData("proxy")]
    [InlineData("workers monitoring proxy")]
    public async Task Docker_compose_parses_the_compose_file_with_and_without_profiles(string names)
    {
        var profiles = names.Split(' ', StringSplitOptions.RemoveEmptyEntries).SelectMany(p => new[] { "--profile", p });
        // An empty environment: every variable must fall back to its default.
        var result = await Tool.RunAsync("env", ["-i", "PATH=/usr/bin:/bin", "docker-compose", "-f", "compose.yaml", .. profiles, "config"]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.DoesNotContain("variable is not set", result.Stderr, StringComparison.Ordinal);
        var resolved = result.Stdout;
        Assert.Contains("condition: service_healthy", resolved, StringComparison.Ordinal);
        Assert.Contains("pg_isready", resolved, StringComparison.Ordinal);
        Assert.Contains("internal: true", resolved, StringComparison.Ordinal);
        Assert.Contains("Host=db;Port=5432;Database=kiln;Username=kiln;Password=change-me", resolved, StringComparison.Ordinal);
        foreach (var profile in new[] { "monitoring", "proxy", "workers" })
        {
            Assert.Matches($"profiles:\\s*\\n\\s*- {profile}", resolved);
        }
    }

    [Fact]
    public async Task Every_compose_variable_has_a_default_and_is_documented_in_env_example()
    {
        var compose = await File.ReadAllTextAsync(Tool.Deploy("compose.yaml"));
        var example = await File.ReadAllTextAsync(Tool.Deploy(".env.example"));
        var variables = Variable().Matches(compose).ToList();
        Assert.NotEmpty(variables);
        foreach (Match v in variables)
        {
            Assert.True(v.Groups["default"].Success, $"${{{v.Groups["name"].Value}}} has no :- default");
            Assert.Matches($"(?m)^{v.Groups["name"].Value}=", example);
        }

        // $$ escapes a variable for the container's shell (the pg_isready health check); it is not a compose variable.
        Assert.Empty(Regex.Matches(compose, @"(?<!\$)\$(?!\$|\{)[A-Za-z_]"));
    }

    [Fact]
    public async Task Systemd_verifies_the_server_and_worker_units()
    {
        // systemd-analyze verify also checks that ExecStart's program exists: /usr/bin/dotnet does on this machine
        // (kiln.sh needs the SDK), so that check runs for real; /opt/kiln/kiln.dll is an argument and is not checked.
        Assert.True(File.Exists("/usr/bin/dotnet"), "the units start /usr/bin/dotnet");
        var dir = Directory.CreateTempSubdirectory("kiln-units-").FullName;
        try
        {
            // A template is verified through an instance of it.
            File.Copy(Tool.Deploy("kiln.service"), Path.Combine(dir, "kiln.service"));
            File.Copy(Tool.Deploy("systemd", "kiln-worker@.service"), Path.Combine(dir, "kiln-worker@.service"));
            File.Copy(Tool.Deploy("systemd", "kiln-worker@.service"), Path.Combine(dir, "kiln-worker@1.service"));
            foreach (var unit in new[] { "kiln.service", "kiln-worker@1.service" })
            {
                var result = await Tool.RunAsync("systemd-analyze", ["verify", Path.Combine(dir, unit)], dir);
                Assert.True(result.ExitCode == 0 && result.Stderr.Length == 0 && result.Stdout.Length == 0, $"{unit}: {result.Stdout}{result.Stderr}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        foreach (var unit in new[] { Tool.Deploy("kiln.service"), Tool.Deploy("systemd", "kiln-worker@.service") })
        {
            var text = await File.ReadAllTextAsync(unit);
            foreach (var line in new[] { "User=kiln", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "RestartPreventExitStatus=2" })
            {
                Assert.Contains(line, text, StringComparison.Ordinal);
            }

            Assert.Matches("(?m)^Restart=(on-failure|always)$", text);
        }
    }

    [GeneratedRegex(@"(?<!\$)\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?<default>:-[^}]*)?\}")]
    private static partial Regex Variable();
}
