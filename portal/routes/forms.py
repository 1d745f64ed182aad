"""Form classes (Flask-WTF): server-side validation with messages per field."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp

from portal.services.passwords import MAX_LENGTH

# Intranet addresses (name@corp.local) are fine: only the shape is checked.
EMAIL_SHAPE = Regexp(re.compile(r"^[^@\s]+@[^@\s]+$"), message="Enter a valid email address.")


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


ROLES = [("admin", "Admin"), ("accountant", "Accountant"), ("viewer", "Viewer")]
ROLE_CHOICES = [SelectChoice(value, label) for value, label in ROLES]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."),
                                                     Length(max=MAX_LENGTH)])


class UserCreateForm(FlaskForm):
    email = EmailField("Email", filters=[_strip], validators=[
        DataRequired("Enter an email address."), EMAIL_SHAPE, Length(max=254)])
    name = StringField("Display name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="accountant")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ResetForm(FlaskForm):
    password = PasswordField("New password", validators=[
        DataRequired("Enter a new password."), Length(max=MAX_LENGTH)])
    confirm = PasswordField("Repeat the new password", validators=[
        DataRequired("Repeat the new password."),
        EqualTo("password", "The two passwords differ.")])
