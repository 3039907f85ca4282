using Kiln.Core;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Hosting;

/// <summary>
/// Makes start-up validation messages name the full setting. The framework's data-annotation messages name only the
/// property ("The field MaxFileBytes must be…"); an operator needs the key and the environment variable to set, so
/// every failure reads <c>Kiln:Uploads:MaxFileBytes (env Kiln__Uploads__MaxFileBytes) = -1: …</c>.
/// </summary>
internal static class SettingsValidation
{
    /// <summary>
    /// Replaces every <c>ValidateDataAnnotations()</c> validator of a Kiln options class (one with a <c>Section</c>
    /// constant) by a <see cref="SettingsValidator{T}"/>. Features keep the usual
    /// <c>BindConfiguration(Section).ValidateDataAnnotations().ValidateOnStart()</c>; this runs once all are added.
    /// </summary>
    public static void NameSettingsInMessages(IServiceCollection services)
    {
        for (var i = 0; i < services.Count; i++)
        {
            var descriptor = services[i];
            if (descriptor.IsKeyedService
                || descriptor.ImplementationInstance is not { } instance
                || instance.GetType() is not { IsGenericType: true } type
                || type.GetGenericTypeDefinition() != typeof(DataAnnotationValidateOptions<>))
            {
                continue;
            }

            var optionsType = type.GetGenericArguments()[0];
            if (optionsType.GetField("Section", BindingFlags.Public | BindingFlags.Static)?.GetRawConstantValue() is string section)
            {
                var name = (string?)type.GetProperty(nameof(DataAnnotationValidateOptions<object>.Name))!.GetValue(instance);
                var validator = Activator.CreateInstance(typeof(SettingsValidator<>).MakeGenericType(optionsType), name, section)!;
                services[i] = ServiceDescriptor.Singleton(descriptor.ServiceType, validator);
            }
        }
    }

    /// <summary>The environment variable that sets a configuration key.</summary>
    public static string EnvironmentName(string key) => key.Replace(":", "__", StringComparison.Ordinal);

    /// <summary>Refuses a connection string Npgsql cannot parse, naming the setting rather than only the bad keyword.</summary>
    public static void ValidateConnectionString(IConfiguration configuration)
    {
        var value = configuration.GetConnectionString("Kiln");
        if (string.IsNullOrWhiteSpace(value))
        {
            return;
        }

        try
        {
            _ = new NpgsqlConnectionStringBuilder(value);
        }
        catch (ArgumentException e)
        {
            throw new OptionsValidationException(
                "ConnectionStrings:Kiln", typeof(string), [$"ConnectionStrings:Kiln (env ConnectionStrings__Kiln) is not a valid PostgreSQL connection string: {e.Message}"]);
        }
    }
}

internal sealed class SettingsValidator<T>(string? boundName, string section) : IValidateOptions<T>
    where T : class
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        if (boundName is not null && !string.Equals(boundName, name, StringComparison.Ordinal))
        {
            return ValidateOptionsResult.Skip;
        }

        var results = new List<ValidationResult>();
        if (Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
        {
            return ValidateOptionsResult.Success;
        }

        return ValidateOptionsResult.Fail(results.Select(r => Describe(options, r)));
    }

    private string Describe(T options, ValidationResult result)
    {
        var message = result.ErrorMessage ?? "is invalid.";
        var member = result.MemberNames.FirstOrDefault();
        if (member is null || message.StartsWith(section, StringComparison.Ordinal))
        {
            // Object-level checks already name the key they are about.
            return message;
        }

        var key = section + ":" + member;
        var value = typeof(T).GetProperty(member)?.GetValue(options);
        var shown = value switch
        {
            null => "(empty)",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString(),
        };
        return $"{key} (env {SettingsValidation.EnvironmentName(key)}) = {shown}: {message}";
    }
}
